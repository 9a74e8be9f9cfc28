"""The one description of the machine a figure was measured on (speed and accuracy benchmarks)."""
import os
import platform
from pathlib import Path
from typing import Any, Dict


def cpu_name() -> str:
    """RETURNS (str): The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(gpu_id: int = -1) -> Dict[str, Any]:
    """What this process runs on, as plain data (for a benchmark's JSON).

    gpu_id (int): The GPU in use, -1 for none; with -1 the first visible GPU is
        named all the same, since a table may be written on the machine that trained.
    RETURNS (Dict[str, Any]): cpu, cores, torch_threads, gpu, python, torch, spacy.
    """
    import spacy
    import torch

    gpu = None
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(max(gpu_id, 0))
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "spacy": spacy.__version__,
    }


def describe_machine(info: Dict[str, Any]) -> str:
    """One line naming a machine from machine_info()'s record (older records may lack keys).

    info (Dict[str, Any]): From machine_info().
    RETURNS (str): e.g. "AMD EPYC 7B13, 2 cores, GPU none, torch 2.13.0 with 2 threads, ...".
    """
    torch_part = f"torch {info.get('torch')}"
    if info.get("torch_threads"):
        torch_part += f" with {info['torch_threads']} threads"
    parts = [str(info.get("cpu")), f"{info.get('cores')} cores", f"GPU {info.get('gpu') or 'none'}", torch_part]
    if info.get("python"):
        parts.append(f"Python {info['python']}")
    if info.get("spacy"):
        parts.append(f"spaCy {info['spacy']}")
    return ", ".join(parts)
