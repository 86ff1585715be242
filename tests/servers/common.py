"""The child-process helpers the server fixtures use; the implementation is peers.process.

bench/ and ``make demo`` use the same one; tests may import from either place.
"""

from peers.process import (
    LOOPBACK,
    STACK_EXPORTER,
    Process,
    ProcessError,
    free_port,
    port_is_open,
    tail,
    temp_dir,
    wait_for_port,
    wait_until,
)

__all__ = [
    "LOOPBACK",
    "STACK_EXPORTER",
    "Process",
    "ProcessError",
    "free_port",
    "port_is_open",
    "tail",
    "temp_dir",
    "wait_for_port",
    "wait_until",
]
