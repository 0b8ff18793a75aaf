# common/cmake/build-info-gen-cpp.cmake for ik_llama.cpp: the ik-llama-cpp-python sdist omits this
# script, which the fork's common/CMakeLists.txt runs (cmake -P, from the source root) to write
# common/build-info.cpp. Copied in by scripts/prepare_ik_llama_cpp.sh and phase 5's Dockerfile.
# No git on purpose: the commit is the pinned sdist's label from OMNI_SOURCE (a git lookup would
# report whatever repository the build folder happens to sit in).
set(BUILD_NUMBER 0)
set(BUILD_COMMIT "unknown")
if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/OMNI_SOURCE")
    file(STRINGS "${CMAKE_CURRENT_SOURCE_DIR}/OMNI_SOURCE" _line REGEX "^build_commit=")
    string(REPLACE "build_commit=" "" BUILD_COMMIT "${_line}")
endif()
execute_process(COMMAND ${CMAKE_C_COMPILER} --version OUTPUT_VARIABLE _version OUTPUT_STRIP_TRAILING_WHITESPACE)
string(REGEX REPLACE "\n.*" "" BUILD_COMPILER "${_version}")
execute_process(COMMAND ${CMAKE_C_COMPILER} -dumpmachine OUTPUT_VARIABLE BUILD_TARGET
                OUTPUT_STRIP_TRAILING_WHITESPACE)
configure_file("${CMAKE_CURRENT_SOURCE_DIR}/common/build-info.cpp.in"
               "${CMAKE_CURRENT_SOURCE_DIR}/common/build-info.cpp")
