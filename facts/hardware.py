"""pyinfra facts for the hardware a local-LLM box is judged on.

Every fact's value is a dict with ``available`` (bool), ``source`` (the tool or file read, or
None) and ``reason`` (why it is unavailable, or which fallback was used) besides its own keys.
A missing tool is data, never a crash: commands print ``##omni:NAME`` section markers and end
with ``true``, so ``process()`` sees which tool ran and what it said. Parsing lives in
``facts.parse`` (pure functions, tested on real captures); these classes are glue.
"""

from __future__ import annotations

from pyinfra.api import FactBase

from .parse import ParseError, failure_line
from .parse.cpu import parse_cpuinfo, parse_lscpu, parse_nvidia_version
from .parse.dmidecode import parse_dmidecode
from .parse.lsblk import parse_lsblk_json
from .parse.lspci import parse_lspci
from .parse.noise import split_sections
from .parse.numactl import parse_numactl
from .parse.nvidia_smi import GPU_QUERY, parse_nvidia_smi_csv
from .parse.secureboot import parse_efivar_sb, parse_mokutil_sb_state
from .parse.sysfs_node import parse_sysfs_node
from .parse.sysfs_pci import device_numa_nodes, merge_links, parse_sysfs_pci

# Debian's non-root PATH lacks the sbin directories where dmidecode lives.
_PATH = 'PATH="$PATH:/usr/sbin:/sbin"; '
_PCI = "/sys/bus/pci/devices/*/"
SYSFS_PCI = "grep -sH . " + " ".join(
    _PCI + name for name in ("class", "vendor", "device", "current_link_speed", "current_link_width",
                             "max_link_speed", "max_link_width", "numa_node"))
_NODE = "/sys/devices/system/node/node*/"
SYSFS_NODE = (f"grep -sH . {_NODE}cpulist {_NODE}distance; "
              f"grep -sH -e MemTotal -e MemFree {_NODE}meminfo")
LSBLK_COLUMNS = "NAME,PATH,TYPE,MODEL,SERIAL,SIZE,FSTYPE,UUID,PTTYPE"
#: A wedged driver can hang nvidia-smi; the bench collects facts for every row and must not hang.
NVIDIA_SMI_TIMEOUT_S = 30


def _nvidia_smi(args: str) -> str:
    return (f"timeout {NVIDIA_SMI_TIMEOUT_S} nvidia-smi {args} 2>&1; "
            f"[ $? != 124 ] || echo 'nvidia-smi: timed out after {NVIDIA_SMI_TIMEOUT_S} s'")


def _tool(name: str, run: str) -> str:
    """Shell that runs ``run`` under a ``##omni:name`` marker, or marks ``name`` missing."""
    return (f"if command -v {name} >/dev/null 2>&1; then echo '##omni:{name}'; {run}; "
            f"else echo '##omni:missing {name}'; fi")


def result(source: str | None, reason: str | None = None, **data) -> dict:
    return {"available": True, "source": source, "reason": reason, **data}


def unavailable(reason: str, source: str | None = None, **empty) -> dict:
    return {"available": False, "source": source, "reason": reason, **empty}


def _why(name: str, lines: list[str], error: Exception) -> str:
    """One line: the tool's own complaint when it printed one, else the parse error."""
    own = next((line.strip() for line in lines if line.startswith(f"{name}:")), None)
    failed = failure_line(lines) or own
    if failed:
        return failed if failed.startswith(f"{name}:") else f"{name}: {failed}"
    return f"{name}: {error}"


class PcieLinks(FactBase[dict]):
    """PCIe link capability vs. status per device, from ``lspci -vvv`` plus sysfs.

    Without root lspci prints ``Capabilities: <access denied>``; sysfs (world-readable) fills
    those gaps, and stands in for lspci where it is not installed (source ``sysfs``).

    .. code:: python

        {"available": True, "source": "lspci", "reason": None, "devices": [
            {"address": "c1:00.0", "pci_address": "0000:c1:00.0", "is_gpu": True,
             "description": "VGA compatible controller: NVIDIA Corporation AD102GL ...",
             "cap_speed_gts": 16, "cap_width": 16, "sta_speed_gts": 2.5, "sta_width": 16,
             "cap_gen": 4, "sta_gen": 1, "downgraded": True, "numa_node": 1}]}
    """

    def command(self) -> str:
        return f"{_PATH}{_tool('lspci', 'lspci -vvv 2>&1')}; echo '##omni:sysfs'; {SYSFS_PCI}; true"

    @staticmethod
    def default() -> dict:
        return unavailable("no output from lspci or /sys/bus/pci", devices=None)

    def process(self, output: list[str]) -> dict:
        sections = split_sections(output)
        try:
            sysfs = parse_sysfs_pci(sections.get("sysfs", []))["devices"]
        except ParseError:
            sysfs = []
        if "lspci" in sections:
            try:
                devices = parse_lspci(sections["lspci"])["devices"]
            except ParseError as error:
                if not sysfs:
                    return unavailable(_why("lspci", sections["lspci"], error), "lspci", devices=None)
            else:
                merged, used = merge_links(devices, sysfs)
                return result("lspci+sysfs" if used else "lspci", devices=merged)
        if sysfs:
            return result("sysfs", "lspci not installed: links read from /sys/bus/pci", devices=sysfs)
        return unavailable("lspci not installed and /sys/bus/pci/devices unreadable", devices=None)


class MemoryModules(FactBase[dict]):
    """DIMMs from ``dmidecode -t memory`` (populated slots, sizes, rated/configured MT/s).

    dmidecode reads root-only SMBIOS tables: as non-root the command tries ``sudo -n``, which
    never prompts; refused or missing it reports ``available: False`` with the reason.

    .. code:: python

        {"available": True, "source": "dmidecode", "reason": None, "slots_total": 8,
         "slots_empty": 0, "total_mib": 393216, "modules": [{"locator": "DIMM 0",
         "bank_locator": "P0 CHANNEL A", "size_mib": 49152, "type": "DDR5",
         "speed_mts": 6400, "configured_mts": 6400, "manufacturer": "...", "part_number": "..."}]}
    """

    def command(self) -> str:
        run = ('if [ "$(id -u)" = 0 ] || ! command -v sudo >/dev/null 2>&1; '
               "then dmidecode -t memory 2>&1; else sudo -n dmidecode -t memory 2>&1; fi")
        return f"{_PATH}{_tool('dmidecode', run)}; true"

    @staticmethod
    def default() -> dict:
        return unavailable("no output from dmidecode", slots_total=None, slots_empty=None,
                           total_mib=None, modules=None)

    def process(self, output: list[str]) -> dict:
        sections = split_sections(output)
        empty = {"slots_total": None, "slots_empty": None, "total_mib": None, "modules": None}
        if "dmidecode" not in sections:
            return unavailable("dmidecode not installed (apt install dmidecode)", **empty)
        lines = sections["dmidecode"]
        try:
            return result("dmidecode", **parse_dmidecode(lines))
        except ParseError as error:
            failed = failure_line(lines) or ""
            if "password is required" in failed or "Permission denied" in failed:
                reason = f"dmidecode needs root ({failed}): run as root or allow passwordless sudo"
            elif "/dev/mem" in failed or "SMBIOS" in failed:
                reason = f"dmidecode found no SMBIOS tables (virtual machine or container?): {failed}"
            else:
                reason = _why("dmidecode", lines, error)
            return unavailable(reason, "dmidecode", **empty)


class NumaTopology(FactBase[dict]):
    """NUMA nodes (CPUs, MiB size/free, distances) from ``numactl --hardware``, else sysfs.

    .. code:: python

        {"available": True, "source": "numactl", "reason": None, "count": 2,
         "nodes": [{"id": 0, "cpus": [0, 1], "size_mib": 193129, "free_mib": 186031}, ...],
         "distances": [[10, 32], [32, 10]], "distances_complete": True}
    """

    def command(self) -> str:
        return f"{_tool('numactl', 'numactl --hardware 2>&1')}; echo '##omni:sysfs'; {SYSFS_NODE}; true"

    @staticmethod
    def default() -> dict:
        return unavailable("no output from numactl or /sys/devices/system/node", count=None, nodes=None,
                           distances=None, distances_complete=False)

    def process(self, output: list[str]) -> dict:
        sections = split_sections(output)
        why = "numactl not installed"
        if "numactl" in sections:
            try:
                return result("numactl", **parse_numactl(sections["numactl"]))
            except ParseError as error:
                why = _why("numactl", sections["numactl"], error)
        try:
            return result("sysfs", f"{why}: read /sys/devices/system/node",
                          **parse_sysfs_node(sections.get("sysfs", [])))
        except ParseError:
            return unavailable(f"{why}; /sys/devices/system/node unreadable", count=None, nodes=None,
                               distances=None, distances_complete=False)


class NvidiaGpus(FactBase[dict]):
    """NVIDIA GPUs with memory and PCIe link from ``nvidia-smi --query-gpu ... --format=csv``.

    ``numa_node`` comes from sysfs; the kernel's -1 ("no affinity") becomes 0 on a machine
    with a single NUMA node online (the only node there is), else null.

    .. code:: python

        {"available": True, "source": "nvidia-smi", "reason": None, "gpus": [
            {"index": 0, "name": "NVIDIA H200", "uuid": "GPU-...", "bus_id": "00000000:00:06.0",
             "pci_address": "0000:00:06.0", "driver_version": "580.159.04",
             "memory_total_mib": 143771, "memory_used_mib": 0, "memory_free_mib": 143156,
             "pcie_gen_current": 5, "pcie_gen_max": 5, "pcie_width_current": 16,
             "pcie_width_max": 16, "numa_node": 0}]}
    """

    def command(self) -> str:
        query = _nvidia_smi(f"--query-gpu={GPU_QUERY} --format=csv")
        return (f"{_tool('nvidia-smi', query)}; echo '##omni:sysfs'; "
                f"grep -sH . {_PCI}numa_node /sys/devices/system/node/online; true")

    @staticmethod
    def default() -> dict:
        return unavailable("no output from nvidia-smi", gpus=None)

    def process(self, output: list[str]) -> dict:
        sections = split_sections(output)
        if "nvidia-smi" not in sections:
            return unavailable("nvidia-smi not installed (no NVIDIA driver)", gpus=None)
        lines = sections["nvidia-smi"]
        try:
            gpus = parse_nvidia_smi_csv(lines)["gpus"]
        except ParseError as error:
            return unavailable(_why("nvidia-smi", lines, error), "nvidia-smi", gpus=None)
        if not gpus:
            return unavailable("nvidia-smi lists no GPUs", "nvidia-smi", gpus=None)
        nodes = device_numa_nodes(sections.get("sysfs", []))
        for gpu in gpus:
            gpu["numa_node"] = nodes.get(gpu["pci_address"])
        return result("nvidia-smi", gpus=gpus)


class BlockDevices(FactBase[dict]):
    """Disks and their partitions/filesystems/mounts from ``lsblk -J -b``.

    .. code:: python

        {"available": True, "source": "lsblk", "reason": None, "disks": [
            {"name": "nvme0n1", "path": "/dev/nvme0n1", "type": "disk",
             "model": "CT4000T705SSD3", "serial": "S7...", "size_bytes": 4000787030016,
             "size_exact": True, "fstype": None, "uuid": None, "pttype": "gpt",
             "mountpoints": [], "children": [...]}], "others": []}
    """

    def requires_command(self) -> str:
        return "lsblk"

    def command(self) -> str:
        base = f"lsblk -J -b -o {LSBLK_COLUMNS}"
        return f"{base},MOUNTPOINTS 2>/dev/null || {base},MOUNTPOINT 2>&1 || true"

    @staticmethod
    def default() -> dict:
        return unavailable("lsblk not installed (apt install util-linux)", disks=None, others=None)

    def process(self, output: list[str]) -> dict:
        try:
            return result("lsblk", **parse_lsblk_json(output))
        except ParseError as error:
            return unavailable(_why("lsblk", output, error), "lsblk", disks=None, others=None)


class CpuInfo(FactBase[dict]):
    """CPU model, vendor, family, sockets, cores, threads, AVX-512/AMX flags (lscpu, else /proc/cpuinfo).

    .. code:: python

        {"available": True, "source": "lscpu", "reason": None,
         "model": "AMD Ryzen Threadripper PRO 9995WX 96-Cores", "vendor": "AuthenticAMD",
         "family": 26, "model_id": 8, "sockets": 1, "cores": 96, "threads": 192,
         "cores_per_socket": 96, "threads_per_core": 2, "numa_nodes": 4, "avx512": True,
         "avx512_flags": ["avx512bw", "avx512f", ...], "avx2": True, "amx_flags": []}
    """

    def command(self) -> str:
        return ("echo '##omni:lscpu'; lscpu -J 2>/dev/null || "
                "{ echo '##omni:cpuinfo'; cat /proc/cpuinfo; }; true")

    @staticmethod
    def default() -> dict:
        return unavailable("no output from lscpu or /proc/cpuinfo")

    def process(self, output: list[str]) -> dict:
        sections = split_sections(output)
        if "cpuinfo" in sections:
            try:
                return result("cpuinfo", "lscpu -J failed: read /proc/cpuinfo",
                              **parse_cpuinfo(sections["cpuinfo"]))
            except ParseError as error:
                return unavailable(f"lscpu -J failed and /proc/cpuinfo: {error}")
        try:
            return result("lscpu", **parse_lscpu(sections.get("lscpu", [])))
        except ParseError as error:
            return unavailable(f"lscpu: {error}", "lscpu")


class NvidiaDriver(FactBase[dict]):
    """Loaded NVIDIA kernel driver version from ``/proc/driver/nvidia/version`` (nvidia-smi else).

    .. code:: python

        {"available": True, "source": "/proc/driver/nvidia/version", "reason": None,
         "version": "580.159.04", "kernel_module": "NVIDIA UNIX Open Kernel Module for x86_64",
         "open_kernel_module": True}
    """

    def command(self) -> str:
        return ("if [ -r /proc/driver/nvidia/version ]; then echo '##omni:proc'; "
                "cat /proc/driver/nvidia/version; "
                "elif command -v nvidia-smi >/dev/null 2>&1; then echo '##omni:nvidia-smi'; "
                f"{_nvidia_smi('--query-gpu=driver_version --format=csv,noheader')}; "
                "else echo '##omni:missing'; fi; true")

    @staticmethod
    def default() -> dict:
        return unavailable("no output from /proc/driver/nvidia/version or nvidia-smi",
                           version=None, kernel_module=None, open_kernel_module=None)

    def process(self, output: list[str]) -> dict:
        sections = split_sections(output)
        empty = {"version": None, "kernel_module": None, "open_kernel_module": None}
        if "proc" in sections:
            try:
                return result("/proc/driver/nvidia/version", **parse_nvidia_version(sections["proc"]))
            except ParseError as error:
                return unavailable(str(error), "/proc/driver/nvidia/version", **empty)
        lines = [line.strip() for line in sections.get("nvidia-smi", []) if line.strip()]
        if lines and lines[0][:1].isdigit():
            return result("nvidia-smi", "/proc/driver/nvidia/version unreadable",
                          **{**empty, "version": lines[0]})
        if lines:
            return unavailable(_why("nvidia-smi", lines, ParseError(lines[0])), "nvidia-smi", **empty)
        return unavailable("NVIDIA driver not loaded: no /proc/driver/nvidia/version, no nvidia-smi", **empty)


SB_EFIVAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


class SecureBoot(FactBase[dict]):
    """UEFI Secure Boot state, from ``mokutil --sb-state`` or the SecureBoot EFI variable.

    .. code:: python

        {"available": True, "source": "mokutil", "reason": None,
         "secure_boot": True, "detail": "SecureBoot enabled"}
    """

    def command(self) -> str:
        return (_PATH + _tool("mokutil", "mokutil --sb-state 2>&1")
                + f"; if [ -r {SB_EFIVAR} ]; then echo '##omni:efivar'; od -An -t u1 {SB_EFIVAR}; "
                "elif [ ! -d /sys/firmware/efi ]; then echo '##omni:legacy'; fi; true")

    @staticmethod
    def default() -> dict:
        return unavailable("no output from mokutil or the SecureBoot EFI variable",
                           secure_boot=None, detail=None)

    def process(self, output: list[str]) -> dict:
        sections = split_sections(output)
        errors = []
        for name, parser in (("mokutil", parse_mokutil_sb_state), ("efivar", parse_efivar_sb)):
            if name in sections:
                try:
                    return result(name, "; ".join(errors) or None, **parser(sections[name]))
                except ParseError as error:
                    errors.append(_why(name, sections[name], error))
        if "legacy" in sections:
            return result("/sys/firmware/efi", None, secure_boot=False, detail="legacy BIOS boot (no UEFI)")
        return unavailable("; ".join(errors) or "neither mokutil nor the SecureBoot EFI variable is readable",
                           secure_boot=None, detail=None)


#: Every fact ``collect`` gathers, under the key it reports it.
ALL_FACTS: dict[str, type[FactBase]] = {
    "cpu": CpuInfo,
    "memory_modules": MemoryModules,
    "numa": NumaTopology,
    "pcie_links": PcieLinks,
    "nvidia_driver": NvidiaDriver,
    "nvidia_gpus": NvidiaGpus,
    "block_devices": BlockDevices,
}
