"""Bulk extraction on Ray Data: the output of `extract`, computed by a pool of Ray actors.

The driver reads the input with the same code as `extract` (read_records), so line
numbers and bad-line reports are the same; it puts chunks of usable records on a
bounded Ray queue, from which one streaming read task feeds a Ray Dataset. An actor
pool (one pipeline per actor, loaded once) runs map_batches over it with
preserve_order on, and the driver writes the records as they come back, in input
order, to one output stream. Nothing in the driver grows with the input.

actor.py holds what runs in the actors, data.py the Ray Data plumbing and
driver.py ray_extract itself. Ray is imported only when a run starts.
"""

from .actor import RayExtractor, import_ray
from .driver import ray_extract

__all__ = ["RayExtractor", "import_ray", "ray_extract"]
