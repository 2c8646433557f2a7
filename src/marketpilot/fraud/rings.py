"""Fraud rings as connected components: accounts linked by a shared device or instrument.

A ring shows up as several accounts using the same few devices and stolen cards. Each
account and each identifier (``device:...``, ``instrument:...``) is a node; a payment
attempt links its account to its identifiers; the components are kept by a union-find
(path halving, union by size) updated from every observed attempt, so the component of an
account is available in near-constant time on the request path. Components only grow:
a shared identifier is evidence that stays. IPs are left out on purpose: carrier NAT and
office networks put thousands of honest accounts behind one address.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["AccountGraph"]


class AccountGraph:
    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._accounts: dict[str, set[str]] = {}  # root -> accounts in its component

    def _find(self, node: str) -> str:
        parent = self._parent
        if node not in parent:
            return node
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def _add(self, node: str, account: bool) -> str:
        if node not in self._parent:
            self._parent[node] = node
            self._accounts[node] = {node[2:]} if account else set()
        return self._find(node)

    def link(self, account: str, identifiers: Sequence[str]) -> int:
        """Link `account` with its `identifiers`; returns the size (accounts) of its component."""
        root = self._add("a:" + account, True)
        for ident in identifiers:
            other = self._add("i:" + ident, False)
            if other != root:
                small, big = sorted((root, other), key=lambda n: len(self._accounts[n]))
                self._parent[small] = big
                self._accounts[big] |= self._accounts.pop(small)
                root = big
        return len(self._accounts[root])

    def members(self, account: str) -> set[str]:
        node = "a:" + account
        if node not in self._parent:
            return {account}
        return self._accounts[self._find(node)]

    def members_if_linked(self, account: str, identifiers: Sequence[str]) -> set[str]:
        """The accounts `account` would share a component with after using `identifiers`
        (without changing the graph): the request path asks before it observes."""
        roots = {self._find("a:" + account)} | {self._find("i:" + i) for i in identifiers}
        found: set[str] = {account}
        for root in roots:
            found |= self._accounts.get(root, set())
        return found

    def component_count(self) -> int:
        return len(self._accounts)
