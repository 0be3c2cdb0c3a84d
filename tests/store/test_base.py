"""Partitions: which partition each site belongs to, and the sites of each partition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callfloor.config import StoreConfig
from callfloor.store.base import ALL, PartitionMap


def _map(partitions: str | tuple[tuple[str, ...], ...] | None) -> PartitionMap:
    return PartitionMap(StoreConfig(url="redis://x", kind="redis", partitions=partitions))


def test_every_site_is_in_the_one_partition_by_default() -> None:
    """Without partitions every site maps to "all", which holds every site."""
    partitions = _map(None)
    assert {partitions.of("a"), partitions.of("x+y")} == {ALL}
    assert partitions.sites(ALL) is None


def test_a_group_is_named_after_its_first_site_and_holds_its_sites() -> None:
    """Each site of a group maps to the group's first site, whose partition holds them all."""
    partitions = _map((("north", "south", "east"),))
    assert {partitions.of(site) for site in ("north", "south", "east")} == {"north"}
    assert partitions.sites("north") == frozenset({"north", "south", "east"})


def test_a_site_named_with_a_plus_in_no_group_is_a_partition_of_its_own() -> None:
    """A site whose name holds '+' maps to itself and its partition is just that site."""
    partitions = _map((("a", "b"),))
    assert partitions.of("x+y") == "x+y"
    assert partitions.sites("x+y") == frozenset({"x+y"})


def test_a_lone_site_named_like_two_grouped_sites_joined_is_not_their_group() -> None:
    """A site named 'a+b' in no group is a partition apart from the group of a and b."""
    partitions = _map((("a", "b"),))
    assert partitions.of("a+b") != partitions.of("a")
    assert partitions.sites(partitions.of("a+b")) == frozenset({"a+b"})
    assert partitions.sites(partitions.of("a")) == frozenset({"a", "b"})


def test_a_grouped_site_that_does_not_name_its_group_is_no_partition() -> None:
    """Asking for the sites of a grouped site other than its group's key is refused."""
    partitions = _map((("a", "b"),))
    with pytest.raises(ValueError, match="its site is in partition 'a'"):
        partitions.sites("b")


def test_by_site_each_site_is_its_own_partition_whatever_its_name() -> None:
    """With partitions by site, "all" and "a+b" are sites like any other."""
    partitions = _map("site")
    for site in ("a", "a+b", ALL):
        assert partitions.of(site) == site
        assert partitions.sites(site) == frozenset({site})


_NAMES = st.text(alphabet="ab+c", min_size=1, max_size=4)


@given(
    groups=st.lists(st.lists(_NAMES, min_size=1, max_size=3), max_size=4),
    others=st.lists(_NAMES, max_size=6),
)
def test_every_site_is_in_its_own_partition_and_in_no_other(
    groups: list[list[str]], others: list[str]
) -> None:
    """For any groups and any other sites, a site is among its partition's sites, and two
    sites share a key only when they share a group."""
    seen: set[str] = set()
    config: list[tuple[str, ...]] = []
    for group in groups:  # as the configuration allows: a site in one group at most
        kept = tuple(dict.fromkeys(site for site in group if site not in seen))
        if kept:
            config.append(kept)
            seen.update(kept)
    partitions = _map(tuple(config))
    group_of = {site: group for group in config for site in group}
    sites = sorted(seen | set(others))
    for site in sites:
        assert site in (partitions.sites(partitions.of(site)) or ())
    for one in sites:
        for other in sites:
            together = one == other or (one in group_of and group_of[one] == group_of.get(other))
            assert (partitions.of(one) == partitions.of(other)) == together
