# Shared by prepare_llama_cpp.sh and prepare_ik_llama_cpp.sh (sourced, not run): fetch a Python
# binding's sdist that vendors a llama.cpp-family tree, check it, trim it and pack it.
# Why one function: both engines come the same way (pip can fetch a pinned sdist where git
# cannot) and must be trimmed and labelled the same way for build_llama_cpp.sh.

# pack_vendored_source PACKAGE VERSION VENDOR_DIR SHA256 OUT
#   SHA256 "-" skips the check (a version nobody pinned); the tarball's top folder is VENDOR_DIR's
#   basename, and OMNI_SOURCE inside it says where it came from. Calls trim_source SRC if defined.
pack_vendored_source() {
  local package=$1 version=$2 vendor=$3 sha=$4 out=$5 work sdist src name got
  work=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  mkdir -p "$(dirname "$out")"
  echo "fetching $package==$version sdist ..."
  "${PYTHON:-python3}" -m pip download -q --no-deps --no-binary :all: -d "$work" "$package==$version"
  sdist=$(find "$work" -maxdepth 1 -name '*.tar.gz' | head -1)
  [ -n "$sdist" ] || { echo "error: pip download of $package==$version gave no sdist" >&2; return 1; }
  got=$(sha256sum "$sdist" | cut -d' ' -f1)
  if [ "$sha" != - ] && [ "$got" != "$sha" ]; then
    echo "error: $(basename "$sdist") has sha256 $got, pinned $sha: the index served other bytes; do not build from it" >&2
    return 1
  fi
  tar xzf "$sdist" -C "$work"
  src=$(find "$work" -mindepth 2 -maxdepth 3 -type d -path "*/$vendor" | head -1)
  [ -n "$src" ] && [ -f "$src/CMakeLists.txt" ] \
    || { echo "error: $package $version has no $vendor/CMakeLists.txt: the sdist layout changed, pick another version" >&2; return 1; }
  name=$(basename "$src")
  rm -rf "$src/.git" "$src/.github" "$src/docs" "$src/media"
  find "$src/models" -name '*.gguf' -delete 2>/dev/null || true
  if declare -F trim_source >/dev/null; then trim_source "$src"; fi
  printf 'source=%s==%s (%s)\nsdist_sha256=%s\nbuild_commit=%s\nprepared=%s\n' \
    "$package" "$version" "$vendor" "$got" "${BUILD_COMMIT:-$package-$version}" "$(date -u +%FT%TZ)" >"$src/OMNI_SOURCE"
  tar czf "$out" -C "$src/.." "$name"
  echo "wrote $out ($(du -h "$out" | cut -f1), sdist sha256 $got, tarball sha256 $(sha256sum "$out" | cut -c1-16)...)"
}
