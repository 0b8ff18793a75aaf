#!/usr/bin/env bash
# Capture the raw outputs our hardware facts parse, verbatim, one file per command.
# Why: fact parsers are tested on real captures; attach this folder to a bug report.
# Usage: sudo scripts/capture_hw.sh OUTDIR   (as root: lspci shows link status, dmidecode reads SMBIOS)
# Then fill in each file's '# expect:' line and parse one with: python -m facts parse KIND FILE
set -u
out=${1:?usage: capture_hw.sh OUTDIR}
mkdir -p "$out"
host=$(hostname 2>/dev/null || echo unknown)
GPU_QUERY=index,name,uuid,pci.bus_id,driver_version,memory.total,memory.used,memory.free,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max
cap() { # cap NAME CMD...: write "# source:" header then the command's verbatim output
  local name=$1; shift
  { echo "# source: captured by scripts/capture_hw.sh on $host ($(date -u +%FT%TZ)): $*"
    echo "# expect: (fill in what a correct parser extracts)"
    bash -c "$*" 2>&1; } >"$out/$name.txt"
}
cap nvidia-smi-q 'nvidia-smi -q'
cap nvidia-smi-query-gpu-csv "nvidia-smi --query-gpu=$GPU_QUERY --format=csv"
cap nvidia-smi-query-gpu-csv-noheader "nvidia-smi --query-gpu=$GPU_QUERY --format=csv,noheader,nounits"
cap numactl-hardware 'numactl --hardware'
cap sysfs-node 'grep -sH . /sys/devices/system/node/node*/cpulist /sys/devices/system/node/node*/distance /sys/devices/system/node/online; grep -sH MemTotal /sys/devices/system/node/node*/meminfo; grep -sH MemFree /sys/devices/system/node/node*/meminfo'
cap sysfs-pci 'grep -sH . /sys/bus/pci/devices/*/{class,vendor,device,current_link_speed,current_link_width,max_link_speed,max_link_width,numa_node}'
cap lspci-vvv 'lspci -vvv'
cap dmidecode-t-memory 'dmidecode -t memory'
cap lsblk-json 'lsblk -J -b -o NAME,PATH,TYPE,MODEL,SERIAL,SIZE,FSTYPE,UUID,PTTYPE,MOUNTPOINTS'
cap lscpu-json 'lscpu -J'
cap proc-cpuinfo 'cat /proc/cpuinfo'
cap proc-driver-nvidia-version 'cat /proc/driver/nvidia/version'
cap os-release 'cat /etc/os-release; uname -srvm'
cap proc-meminfo 'cat /proc/meminfo'
[ "$(id -u)" = 0 ] || echo "note: not root, so lspci hides link status and dmidecode cannot read SMBIOS" >&2
echo "captured $(ls "$out" | wc -l) files into $out"
