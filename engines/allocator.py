"""How the process's C allocator hands back memory: a batched CPU decode reuses its freed buffers.

glibc's malloc serves a request above its mmap threshold (dynamic, at most 32 MB) with a fresh mmap and
returns it to the system on free, so every such tensor is page-faulted in again, one 4 KB page at a
time. A 256-latent decode of the style-based generator makes 33 MB activations (256 x 32 x 32 x 32
float32): each call faulted in hundreds of megabytes, and its time swung between 90 and 200 ms with
whatever else the kernel was doing. With both thresholds at RETAIN_BYTES the freed buffers stay in the
heap and the next decode reuses them: 64-76 ms, steady (measured on the project's 2-core machine; see
README "Performance"). The cost: up to RETAIN_BYTES of freed memory may stay with the process instead
of going back to the system.

Only glibc (Linux) has these knobs; elsewhere `retain_freed_memory` does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

RETAIN_BYTES = 256 * 1024 * 1024  # 128 MB left the decode above at 72 ms, 256 MB at 64-66 ms
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def retain_freed_memory(limit: int = RETAIN_BYTES) -> bool:
    """Serve allocations up to `limit` bytes from the heap and keep up to `limit` of freed memory there
    (glibc's mallopt). True when set; False where the C library is not glibc or refuses."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        log.debug("allocator policy: not glibc; left as it is")
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = libc.mallopt(_M_MMAP_THRESHOLD, int(limit)) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, int(limit)) == 1
    except (OSError, AttributeError) as error:
        log.debug("allocator policy: %s", error)
        return False
    return done
