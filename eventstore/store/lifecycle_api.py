"""HistoryStore's lifecycle methods (a mixin, like `catalog_api.CatalogMethods`).

The shard manifest facade (`HistoryStore.lifecycle`) and the listings that
reach executions retention moved to archives (`include_archived=True`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from ..errors import StoreError
from .lifecycle import StoreLifecycle
from .lifecycle_protocol import ShardManifestBackend

if TYPE_CHECKING:
    from ..events import Event
    from .history import HistoryStore
    from .protocol import HistoryBackend

__all__ = ["LifecycleMethods"]


class LifecycleMethods:
    backend: HistoryBackend
    _lifecycle: StoreLifecycle | None

    def _init_lifecycle(self) -> None:
        backend = self.backend
        self._lifecycle = (
            StoreLifecycle(backend, backend.description)
            if isinstance(backend, ShardManifestBackend)
            else None
        )

    @property
    def lifecycle(self) -> StoreLifecycle:
        """The store's shard manifest, archives and purges (eventstore.lifecycle)."""
        if self._lifecycle is None:
            raise StoreError(f"{self.backend.description} keeps no shard manifest")
        return self._lifecycle

    def read_archived(self, instance_id: str, execution_id: int | None) -> list[Event]:
        """The events of an execution the table holds no row of, from its archive
        (the instance's latest archived one for None); [] when none holds it.

        The one rule for a reused execution id: the table's rows are the
        execution, so callers come here only once the table held none of its
        rows (`read`, and `eventstore.aio`'s read, which awaits the table
        first and runs this in a thread: it opens and inflates a file).
        """
        lifecycle = self._lifecycle
        if lifecycle is None:
            return []
        if execution_id is None:
            execution_id = lifecycle.latest_execution(instance_id)
            if execution_id is None:
                return []
        return lifecycle.read_archived(cast("HistoryStore", self), instance_id, execution_id)

    def executions(self, instance_id: str, *, include_archived: bool = False) -> list[int]:
        """The instance's execution ids in the table (and, with
        `include_archived`, those retention moved to archives), in order."""
        found = self.backend.executions(instance_id)
        if include_archived and self._lifecycle is not None:
            found = sorted({*found, *self._lifecycle.archived_executions_of(instance_id)})
        return found

    def instances(self, *, include_archived: bool = False) -> list[str]:
        """Every instance in the table (and, with `include_archived`, in archives)."""
        found = self.backend.instances()
        if include_archived and self._lifecycle is not None:
            have = set(found)
            found += [i for i in self._lifecycle.archived_instances() if i not in have]
        return found
