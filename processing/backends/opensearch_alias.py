"""The alias `<index>` moved to a published version in one atomic `_aliases` call, safe to repeat.

The call removes the alias from every version (`<index>-*`, `must_exist: false`) and adds it to the new one.
Checked on a 2.19.1 node: removing the alias from a named index that has since been deleted answers 404
`index_not_found_exception` even with `must_exist: false`, and removing it from a named index when the alias
exists nowhere answers 404 `aliases_not_found_exception`; the wildcard remove answers neither. So a client retry
of a swap that already succeeded re-applies it, and of two publishes at once the later one wins whole: the alias
never points to two versions, and a swap never fails because another publish (or its expiry) moved first.
"""

from __future__ import annotations

from opensearchpy import OpenSearch


def swap_alias(client: OpenSearch, alias: str, new_index: str) -> None:
    actions = [
        {"remove": {"index": f"{alias}-*", "alias": alias, "must_exist": False}},
        {"add": {"index": new_index, "alias": alias}},
    ]
    client.indices.update_aliases(body={"actions": actions})
