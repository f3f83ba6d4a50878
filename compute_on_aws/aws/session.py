"""One boto3 session and one client per service, created on first use; AWS failures turned into one-line errors."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from compute_on_aws import __version__, interrupts
from compute_on_aws.aws.ratelimit import Stopped, TokenBucket
from compute_on_aws.errors import AwsError, UserError

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

# What to do about the AWS error codes users meet most.
_ADVICE = {
    "AccessDeniedException": "check the IAM permissions of the credentials in use (AWS_PROFILE)",
    "AccessDenied": "check the IAM permissions of the credentials in use (AWS_PROFILE)",
    "UnrecognizedClientException": "the credentials are not valid for this account/region; check AWS_PROFILE",
    "InvalidSignatureException": "the credentials are not valid; check AWS_PROFILE and the clock",
    "ExpiredTokenException": "the session token expired; log in again (aws sso login, or refresh the credentials)",
    "ExpiredToken": "the session token expired; log in again (aws sso login, or refresh the credentials)",
    "TooManyRequestsException": "AWS Batch allows 50 requests/s per account; retry in a minute",
    "ThrottlingException": "throttled by AWS; retry in a minute",
    "ClientException": "AWS Batch refused the request: check that what it names (queue, definition, compute) exists",
    "ServerException": "a failure on AWS's side; retry later",
    "RepositoryNotFoundException": "create the repository named in image.repository (compute-on-aws.yaml) first",
}


# Threads calling AWS at once in a bulk submission (the rate limit, not this, sets the pace).
CONNECTIONS = 16

# Seconds between looks at calls under way: how soon Ctrl-C is seen.
TICK = 0.05

T = TypeVar("T")
R = TypeVar("R")

# botocore's default: an answer slower than this counts as lost (for SubmitJob: the job may exist, see OutcomeUnknown).
READ_TIMEOUT = 60


class Aws:
    """Lazily created session and clients; region from the config or the standard boto3 chain."""

    def __init__(self, region: str | None = None, *, batch_calls_per_second: float | None = None) -> None:
        self._region = region
        self._session: boto3.session.Session | None = None
        self._clients: dict[str, Any] = {}
        # Clients are made under it: warm() makes one on a thread of its own while the caller goes on.
        self._making = threading.Lock()
        # Every Batch call of the process, from any thread, takes a token first (None: no limit).
        self.batch_budget: TokenBucket | None = (
            None if batch_calls_per_second is None else TokenBucket(batch_calls_per_second)
        )

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """function over items on up to CONNECTIONS threads, in order; Batch's rate limit sets the pace of its calls.
        An item that fails raises once all are done, and stops nothing else (another queue's calls go on). On Ctrl-C,
        calls waiting for their turn are never sent (the signal is deferred to this loop: raised inside
        concurrent.futures' waiting, it could leave a future's lock held and the threads blocked on it for ever)."""
        if len(items) <= 1:
            return [function(item) for item in items]
        pool = ThreadPoolExecutor(min(CONNECTIONS, len(items)))
        with interrupts.deferred():
            try:
                futures = [pool.submit(function, item) for item in items]
                pending: set[Future[R]] = set(futures)
                while pending:
                    interrupts.check()
                    pending = wait(pending, timeout=TICK).not_done
                return [future.result() for future in futures]
            except Exception:
                raise  # one item failed: the others not started are cancelled below; other calls go on
            except BaseException:
                self.stop()  # Ctrl-C: nothing more is sent, from any thread
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """Batch calls waiting for their turn, and later ones, are not sent (Ctrl-C)."""
        if self.batch_budget is not None:
            self.batch_budget.stop()

    def warm(self, *services: str) -> None:
        """Import boto3 and make these clients on a daemon thread, while the caller does other work (Nix evaluates
        the jobs): a bulk call's first request no longer waits for them. A failure is left for the first real use,
        which makes the client again and reports it."""

        def make() -> None:
            for service in services:
                try:
                    self._client(service)
                except Exception:
                    return

        threading.Thread(target=make, name="compute-on-aws-warm", daemon=True).start()

    def _client(self, service: str) -> Any:
        if service in self._clients:
            return self._clients[service]
        with self._making:
            return self._made(service)

    def _made(self, service: str) -> Any:
        if service not in self._clients:
            import botocore.config
            import botocore.exceptions

            if self._session is None:
                self._session = _session(self._region)
            config = botocore.config.Config(
                retries={"mode": "standard", "max_attempts": 8},
                read_timeout=READ_TIMEOUT,
                user_agent_extra=f"compute-on-aws/{__version__}",
                # Bulk submission calls from several threads; each needs a connection of its own.
                max_pool_connections=CONNECTIONS,
            )
            try:
                client = self._session.client(service, config=config)  # type: ignore[call-overload]
            except botocore.exceptions.NoRegionError:
                raise UserError(
                    "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), a region in your profile, "
                    "or region in compute-on-aws.yaml"
                ) from None
            except botocore.exceptions.PartialCredentialsError as e:
                raise UserError(partial_credentials(e)) from None
            except botocore.exceptions.InvalidRegionError as e:
                raise UserError(
                    f"AWS region {e.kwargs.get('region_name')!r} is not a region name (like us-east-1): check "
                    "AWS_REGION, AWS_DEFAULT_REGION, your profile and region in compute-on-aws.yaml"
                ) from None
            except botocore.exceptions.DataNotFoundError:
                raise  # botocore lacks this service's model: not the user's doing
            except botocore.exceptions.BotoCoreError as e:
                raise _configuration_error(e) from None
            if service == "batch":
                client.meta.events.register("needs-retry.batch.SubmitJob", _retry_submit_only_if_unsent)
                client.meta.events.register("needs-retry.batch.RegisterJobDefinition", _retry_submit_only_if_unsent)
                if self.batch_budget is not None:
                    client.meta.events.register("before-send.batch", self.batch_budget.before_send)
            self._clients[service] = client
        return self._clients[service]

    def batch(self) -> BatchClient:
        client: BatchClient = self._client("batch")
        return client

    def ecr(self) -> ECRClient:
        client: ECRClient = self._client("ecr")
        return client

    def iam(self) -> IAMClient:
        client: IAMClient = self._client("iam")
        return client

    def logs(self) -> CloudWatchLogsClient:
        client: CloudWatchLogsClient = self._client("logs")
        return client

    # SNS, EventBridge, CloudWatch and STS (notifications and alarms, infra apply only): typed loosely, as their stubs
    # are not among the test tools.
    def sns(self) -> Any:
        return self._client("sns")

    def events(self) -> Any:
        return self._client("events")

    def cloudwatch(self) -> Any:
        return self._client("cloudwatch")

    def sts(self) -> Any:
        return self._client("sts")

    def scheduler(self) -> EventBridgeSchedulerClient:
        client: EventBridgeSchedulerClient = self._client("scheduler")
        return client


def never_sent(error: BaseException) -> bool:
    """Whether a botocore failure happened before the request reached AWS (no connection could be made)."""
    import botocore.exceptions

    return isinstance(
        error, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError, Stopped)
    )


def _session(region: str | None) -> boto3.session.Session:
    """The one session, or one line naming what in the AWS environment is wrong (exit 2), before any call."""
    import boto3
    import botocore.exceptions

    for name, value in sorted(os.environ.items()):
        if name.startswith("AWS_ENDPOINT_URL") and value:
            try:
                parts = urlsplit(value)
            except ValueError as e:  # "http://[::1": an IPv6 host left open
                raise UserError(f"{name}={value!r} is not a URL ({e}; unset it to use AWS's endpoints)") from None
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise UserError(f"{name}={value!r} is not an http:// or https:// URL (unset it to use AWS's endpoints)")
    bundle = os.environ.get("AWS_CA_BUNDLE")
    if bundle and not Path(bundle).is_file():
        # botocore would find out at the first HTTPS call, as an OSError deep in urllib3.
        raise UserError(f"AWS_CA_BUNDLE={bundle!r} is not a file of CA certificates (unset it to use the system's)")
    # boto3 reads AWS_DEFAULT_REGION but not AWS_REGION, which the AWS CLI and other SDKs honour.
    try:
        session = boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)
        chosen = session.region_name
    except botocore.exceptions.BotoCoreError as e:
        raise _configuration_error(e) from None
    if chosen is not None and not chosen.strip():
        empty = [n for n in ("AWS_REGION", "AWS_DEFAULT_REGION") if n in os.environ and not os.environ[n].strip()]
        raise UserError(
            f"AWS region is empty ({' and '.join(empty) or 'the profile'} set to ''): set it to a region such as "
            "us-east-1, or unset it"
        )
    return session


def _configuration_error(error: Exception) -> UserError:
    """One line for a mistake in the AWS environment or config files, naming the variable to look at."""
    import botocore.exceptions

    if isinstance(error, botocore.exceptions.ProfileNotFound):
        profile = error.kwargs.get("profile")
        return UserError(
            f"AWS profile {profile!r} (AWS_PROFILE) is not in the AWS config files "
            f"({os.environ.get('AWS_CONFIG_FILE', '~/.aws/config')}): `aws configure list-profiles` lists them"
        )
    if isinstance(error, botocore.exceptions.ConfigParseError):
        return UserError(f"AWS config file {error.kwargs.get('path')} cannot be read (AWS_CONFIG_FILE): {error}")
    return UserError(f"AWS configuration: {error}")


class OutcomeUnknown(Exception):
    """A SubmitJob that may have reached AWS but whose answer says nothing usable (a 5xx, a connection lost after the
    request was written): AWS may or may not have created the job. `error` is what botocore would have raised."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _retry_submit_only_if_unsent(
    response: Any = None, caught_exception: Any = None, operation: Any = None, **_: Any
) -> None:
    """botocore's retry decision for SubmitJob and RegisterJobDefinition, which take no idempotency token: a retry
    after a lost answer or a 5xx could queue the job twice (or register two revisions alike). None leaves the decision
    to the standard policy (throttled, or never connected: nothing was created). Otherwise this raises OutcomeUnknown,
    and the caller finds out what AWS did (submitting.Submission, batch.ensure_definition). (Raising is the one answer
    every botocore honours: botocore 1.34 reads a False from this hook as "retry at once".)"""
    import botocore.exceptions

    if caught_exception is not None:
        if never_sent(caught_exception):
            return
        raise OutcomeUnknown(caught_exception)
    if response is not None and response[0].status_code >= 500:
        raise OutcomeUnknown(botocore.exceptions.ClientError(response[1], getattr(operation, "name", "SubmitJob")))


def partial_credentials(error: Any) -> str:
    """One line for an access key id without its secret (or the reverse), a mistake in the environment or profile."""
    return (
        f"incomplete AWS credentials in {error.kwargs.get('provider')}: {error.kwargs.get('cred_var')} is missing "
        "(set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither, or complete the profile)"
    )


# An AWS error as a query-protocol (XML) body: what an endpoint or a proxy may answer a JSON service with, and what a
# botocore too old to read it then leaves whole in Message, with the HTTP status as Code.
_XML_ERROR = re.compile(r"<Code>(?P<code>[^<]+)</Code>.*?<Message>(?P<message>[^<]*)</Message>", re.DOTALL)


def _error_fields(error: BaseException) -> tuple[str | None, str]:
    """The AWS error code and message of a botocore ClientError (None, "" for anything else)."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None, ""
    code, message = response.get("Error", {}).get("Code"), str(response.get("Error", {}).get("Message", ""))
    if found := _XML_ERROR.search(message):
        return found["code"], found["message"]
    return (str(code) if code is not None else None), message


def error_code(error: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    return _error_fields(error)[0]


@contextmanager
def calling(what: str, done: list[str] | None = None) -> Iterator[None]:
    """Turns botocore failures inside the block into an AwsError naming the step, the AWS code and what to do.

    `done` lists what already happened (e.g. a registered definition), so a failure part-way says so.
    """
    import botocore.exceptions
    import botocore.parsers

    already = f" (already done: {'; '.join(done)})" if done else ""
    try:
        yield
    except botocore.exceptions.ClientError as e:
        code, text = _error_fields(e)
        code = code or "Unknown"
        # One line, even when a proxy or endpoint answers with a page of XML or HTML.
        message = " ".join(text.split())
        advice = _ADVICE.get(code)
        raise AwsError(f"{what}: AWS {code}: {message}{f' ({advice})' if advice else ''}{already}", code) from None
    except botocore.exceptions.PartialCredentialsError as e:
        raise UserError(f"{what}: {partial_credentials(e)}{already}") from None
    except botocore.exceptions.NoCredentialsError:
        raise UserError(
            f"{what}: no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            f"{already}"
        ) from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionError) as e:
        raise AwsError(
            f"{what}: network: cannot reach AWS ({e}); check the connection, proxy or AWS_ENDPOINT_URL{already}"
        ) from None
    except botocore.exceptions.ParamValidationError as e:
        # What the declarations allow and this botocore's model of the call lacks (a field newer than it).
        import botocore

        report = " ".join(str(e).split())
        raise UserError(
            f"{what}: botocore {botocore.__version__} cannot send it ({report}): upgrade boto3 and botocore "
            f"(pip install -U boto3){already}"
        ) from None
    except botocore.exceptions.BotoCoreError as e:
        raise AwsError(f"{what}: {e}{already}") from None
    except botocore.parsers.ResponseParserError as e:
        # Not a BotoCoreError: an answer botocore cannot read (a proxy's page, a cut-off body).
        first = " ".join(str(e).split())[:200]
        raise AwsError(
            f"{what}: an answer from AWS that cannot be read ({first}); a proxy or the network may have changed it: "
            f"try again{already}"
        ) from None
