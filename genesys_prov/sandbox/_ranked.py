"""A set of small non-negative integers with O(log n) insert, delete and k-th smallest.

The Genesys emulator numbers users in creation order and keeps one of these for the active
and one for the inactive users, so a listing page costs O(page · log n) however many users
exist and however many were deactivated or deleted (a Fenwick tree over the numbers).
"""

from __future__ import annotations


class RankedSet:
    """Members are ints ≥ 0; ``kth(k)`` is the k-th smallest member (0-based)."""

    def __init__(self, capacity: int = 1024) -> None:
        """An empty set sized for ``capacity`` members before the first growth."""
        size = 1
        while size < capacity:
            size *= 2
        self._capacity = size
        self._tree = [0] * (size + 1)
        self._present = bytearray(size)
        self._count = 0

    def __len__(self) -> int:
        """The number of members."""
        return self._count

    def __contains__(self, number: object) -> bool:
        """Whether ``number`` is a member."""
        return (
            isinstance(number, int)
            and 0 <= number < self._capacity
            and bool(self._present[number])
        )

    def _grow(self, needed: int) -> None:
        """Enlarge to hold ``needed`` and rebuild the tree in O(n)."""
        size = self._capacity
        while size <= needed:
            size *= 2
        present = self._present + bytearray(size - self._capacity)
        tree = [0] * (size + 1)
        for index in range(1, size + 1):  # O(n) Fenwick build
            tree[index] += present[index - 1]
            parent = index + (index & -index)
            if parent <= size:
                tree[parent] += tree[index]
        self._capacity, self._present, self._tree = size, present, tree

    def _update(self, number: int, delta: int) -> None:
        """Add ``delta`` at ``number`` in the Fenwick tree."""
        index = number + 1
        tree, size = self._tree, self._capacity
        while index <= size:
            tree[index] += delta
            index += index & -index

    def add(self, number: int) -> None:
        """Insert ``number`` (no-op when present)."""
        if number < 0:
            raise ValueError("members must be non-negative")
        if number >= self._capacity:
            self._grow(number)
        if self._present[number]:
            return
        self._present[number] = 1
        self._count += 1
        self._update(number, 1)

    def discard(self, number: int) -> None:
        """Remove ``number`` (no-op when absent)."""
        if number not in self:
            return
        self._present[number] = 0
        self._count -= 1
        self._update(number, -1)

    def kth(self, k: int) -> int:
        """The k-th smallest member (0-based); ``IndexError`` when out of range."""
        if not 0 <= k < self._count:
            raise IndexError(k)
        position = 0
        remaining = k + 1
        step = self._capacity
        tree = self._tree
        while step:
            probe = position + step
            if probe <= self._capacity and tree[probe] < remaining:
                position = probe
                remaining -= tree[probe]
            step //= 2
        return position

    def page(self, offset: int, count: int) -> list[int]:
        """Up to ``count`` members in ascending order, skipping the first ``offset``."""
        end = min(self._count, offset + count)
        return [self.kth(k) for k in range(max(offset, 0), end)]
