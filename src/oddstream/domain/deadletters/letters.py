"""A dead letter's state, folded from its events: open until a replay resolves it. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .events import DeadLettered, DeadLetterEvent, ReplayClaimed, ReplayFailed, Resolved

OPEN = "open"
RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What an operator sees of a letter: the original refusal, the latest reason (a
    failed replay's, if any), every replay attempt, and whether it is resolved."""

    letter: DeadLettered
    #: the stream position of the ``DeadLettered`` event
    position: int
    status: str = OPEN
    reason: str = ""
    message: str = ""
    path: str = ""
    attempts: tuple[ReplayFailed | Resolved, ...] = field(default=())
    #: a replay under way (claimed, not ended yet), if any
    claim: ReplayClaimed | None = None

    @property
    def letter_id(self) -> str:
        return self.letter.letter_id

    @property
    def source(self) -> str:
        return self.letter.source

    @classmethod
    def start(cls, letter: DeadLettered, position: int) -> DeadLetter:
        return cls(letter, position, OPEN, letter.reason, letter.message, letter.path)

    def evolve(self, event: DeadLetterEvent) -> DeadLetter:
        """The letter after ``event`` (one of its own replays)."""
        if isinstance(event, ReplayClaimed):
            return replace(self, claim=event)
        if isinstance(event, ReplayFailed):
            return replace(
                self,
                reason=event.reason,
                message=event.message,
                path=event.path,
                attempts=(*self.attempts, event),
                claim=self._claim_after(event),
            )
        if isinstance(event, Resolved):
            return replace(
                self,
                status=RESOLVED,
                attempts=(*self.attempts, event),
                claim=self._claim_after(event),
            )
        return self

    def _claim_after(self, end: ReplayFailed | Resolved) -> ReplayClaimed | None:
        """The claim left after a replay's end: the end of a replay whose claim lapsed
        and was taken over by another replay leaves the other's; an end without a
        claim id (written before claims) ends any."""
        if self.claim is not None and end.claim_id not in (None, self.claim.claim_id):
            return self.claim
        return None


def fold(events: list[tuple[int, DeadLetterEvent]]) -> dict[str, DeadLetter]:
    """Every letter of a stream's events (``(position, event)`` in order), by id."""
    letters: dict[str, DeadLetter] = {}
    for position, event in events:
        if isinstance(event, DeadLettered):
            letters.setdefault(event.letter_id, DeadLetter.start(event, position))
        elif event.letter_id in letters:
            letters[event.letter_id] = letters[event.letter_id].evolve(event)
    return letters
