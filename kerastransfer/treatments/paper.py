"""The paper's treatments (Yosinski et al. 2014, Section 2 and Figure 1; docs/paper.md): the
base networks, BnB (selffer), BnB+ (selffer fine-tuned), AnB (transfer), AnB+ (transfer
fine-tuned) and random frozen features, and one control that is not the paper's: the
compute-matched base (baseB-long).

The paper's names are seen from the target half B. Networks that target A (--directions)
are AnA, BnA...; the paper pools both directions under the B names.

The compute-matched base is the trained base itself trained on for as many more steps as a
transferred network trains, with the same solver. A transferred network's copied layers have
seen the base's steps and then its own; comparing it with this control as well as with the
plain base separates what transfer gives from what extra training gives (docs/statistics.md).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from kerastransfer.treatments.treatment import Copied, Networks, Record, Style, Treatment

if TYPE_CHECKING:
    import keras

# The bases' white dots and grey lines in the figures.
BASE_STYLE = Style(colour="#707070", face="white", linestyle="--")


@dataclasses.dataclass(frozen=True)
class Base(Treatment):
    """The base networks: trained from scratch on a half, the source of every transfer."""

    per_layer = False
    is_base = True

    def name_for(self, target: str) -> str:
        return f"base{target}"

    def network(
        self, study: Networks, n: int, num_classes: int, base_record: Record | None
    ) -> keras.Model:
        return study.build_model(num_classes)


@dataclasses.dataclass(frozen=True)
class LongBase(Treatment):
    """The compute-matched base: the trained base of the same half trained on."""

    per_layer = False

    def name_for(self, target: str) -> str:
        return f"base{target}-long"

    def network(
        self, study: Networks, n: int, num_classes: int, base_record: Record | None
    ) -> keras.Model:
        assert base_record is not None  # the base it trains on (the runner skips it without)
        return study.trained_network(base_record)


@dataclasses.dataclass(frozen=True)
class RandomFeatures(Treatment):
    """Random frozen features: blocks 1..n left at their random initialization, frozen."""

    def name_for(self, target: str) -> str:
        return self.paper_name

    def network(
        self, study: Networks, n: int, num_classes: int, base_record: Record | None
    ) -> keras.Model:
        from kerastransfer import surgery  # noqa: PLC0415  (Keras only where a network is built)

        fresh = study.build_model(num_classes)
        return surgery.transfer(fresh, n, "random_frozen", cut_names=study.cut_names(fresh))


TREATMENTS = (
    Base("base", "baseB", "from scratch", 0, BASE_STYLE, source=None),
    Copied(
        "selffer",
        "BnB",
        "frozen",
        1,
        Style("#1f2f8f", "#1f2f8f", "-", "selffer BnB"),
        source="same",
    ),
    Copied(
        "selffer_ft",
        "BnB+",
        "fine-tuned",
        2,
        Style("#4f8fd0", "#7fb2e5", "-", "selffer BnB$^+$"),
        source="same",
        fine_tuned=True,
        tunes_every_copied_block=True,
        surgery_mode="fine_tuned",
    ),
    Copied("transfer", "AnB", "frozen", 3, Style("#8b0000", "#8b0000", "-", "transfer AnB")),
    Copied(
        "transfer_ft",
        "AnB+",
        "fine-tuned",
        4,
        Style("#e0486a", "#ef6f8a", "--", "transfer AnB$^+$"),
        fine_tuned=True,
        tunes_every_copied_block=True,
        surgery_mode="fine_tuned",
    ),
    RandomFeatures("random", "random", "random", 5, Style("#505050", "#505050", "-"), source=None),
    LongBase(
        "base_long",
        "baseB-long",
        "trained on",
        6,
        BASE_STYLE,
        source="same",
        fine_tuned=True,
    ),
)
