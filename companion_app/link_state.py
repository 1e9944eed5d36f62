"""What the link layer reports to the UI and the store: connection states,
decoded items and counters.  Plain data, no BLE and no Kivy."""

import enum
import time
from dataclasses import dataclass, field
from typing import Any


class LinkState(enum.Enum):
    IDLE = "idle"
    SCANNING = "scanning"
    CONNECTING = "connecting"
    CONNECTED = "connected"  # subscribed, replay requested: events flow
    DISCONNECTED = "disconnected"
    BACKOFF = "backoff"  # waiting before the next attempt
    STOPPED = "stopped"


@dataclass(frozen=True)
class StateChange:
    state: LinkState
    helmet_id: str | None = None
    detail: str = ""
    attempt: int = 0  # consecutive failed attempts so far
    delay_s: float = 0.0  # BACKOFF: how long until the next attempt
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class EventItem:
    helmet_id: str
    event: Any  # protocol.ScreeningEvent
    received_at: float  # time.time() on the phone


@dataclass(frozen=True)
class FrameItem:
    helmet_id: str
    width: int
    height: int
    ambient_c: float
    pixels_centi: Any  # array('h') of centi-degC, row-major
    received_at: float


@dataclass
class LinkStats:
    events: int = 0  # delivered in order
    duplicates: int = 0  # dropped: (helmet, seq) already delivered
    malformed_events: int = 0
    malformed_frames: int = 0  # frame bodies that did not decode
    malformed_responses: int = 0
    chunks_rejected: int = 0  # from the FrameAssembler
    frames: int = 0
    frames_dropped: int = 0  # incomplete (assembler) or UI too slow (queue full)
    acks_sent: int = 0
    replays_requested: int = 0
    connects: int = 0
    disconnects: int = 0
    failed_attempts: int = 0
