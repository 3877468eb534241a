"""perdure: durable, event-sourced actors for asyncio.

Define an actor as a subclass of :class:`Actor` whose fields are its durable state and
whose ``run(ctx, ...)`` is its workflow; host actors in an :class:`ActorSystem`.
"""

from ._activities import ActivityInfo as ActivityInfo
from ._activities import activity_info as activity_info
from ._actor import Actor as Actor
from ._actor import Retry as Retry
from ._actor import activity as activity
from ._actor import handler as handler
from ._actor import query as query
from ._actor import signal as signal
from ._clock import Clock as Clock
from ._clock import SystemClock as SystemClock
from ._context import Context as Context
from ._context import WorkflowRef as WorkflowRef
from ._exceptions import ActivityError as ActivityError
from ._exceptions import ActorCancelled as ActorCancelled
from ._exceptions import ActorError as ActorError
from ._exceptions import ActorFailed as ActorFailed
from ._exceptions import ActorNotFoundError as ActorNotFoundError
from ._exceptions import ActorNotRunningError as ActorNotRunningError
from ._exceptions import ActorTerminated as ActorTerminated
from ._exceptions import ActorTypeError as ActorTypeError
from ._exceptions import ErrorInfo as ErrorInfo
from ._exceptions import NondeterminismError as NondeterminismError
from ._exceptions import Rejected as Rejected
from ._exceptions import WorkflowLivelockError as WorkflowLivelockError
from ._exceptions import WorkflowSandboxError as WorkflowSandboxError
from ._ref import ActorRef as ActorRef
from ._ref import DeadLetter as DeadLetter
from ._status import Status as Status
from ._supervision import Backoff as Backoff
from ._supervision import OnPoison as OnPoison
from ._supervision import RestartType as RestartType
from ._supervision import Strategy as Strategy
from ._supervision import Supervision as Supervision
from ._supervision import Terminated as Terminated
from ._system import ActorSystem as ActorSystem

__all__ = [
    "ActivityError",
    "ActivityInfo",
    "Actor",
    "ActorCancelled",
    "ActorError",
    "ActorFailed",
    "ActorNotFoundError",
    "ActorNotRunningError",
    "ActorRef",
    "ActorSystem",
    "ActorTerminated",
    "ActorTypeError",
    "Backoff",
    "Clock",
    "Context",
    "DeadLetter",
    "ErrorInfo",
    "NondeterminismError",
    "OnPoison",
    "Rejected",
    "RestartType",
    "Retry",
    "Status",
    "Strategy",
    "Supervision",
    "SystemClock",
    "Terminated",
    "WorkflowLivelockError",
    "WorkflowRef",
    "WorkflowSandboxError",
    "activity",
    "activity_info",
    "handler",
    "query",
    "signal",
]
