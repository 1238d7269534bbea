"""`aggregator serve` and `aggregator config`."""

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import orjson
import uvicorn
import yaml
from uvicorn.supervisors import Multiprocess

from aggregator.config import ConfigError, load_config
from aggregator.embedded_redis import RedisServer, RedisServerError
from aggregator.listener import SharedPort
from aggregator.logs import configure_logging, get_logger
from aggregator.settings import Settings

EMBEDDED_REDIS_DIR = Path(".aggregator") / "redis"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aggregator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")  # noqa: S104
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8080")),
        help="port to bind (default $PORT, else 8080)",
    )
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    config = commands.add_parser("config", help="print the effective configuration")
    config.add_argument("--check", action="store_true", help="only validate; exit 1 on problems")
    config.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    return parser


def _load() -> Settings | None:
    try:
        return load_config()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"configuration error: {problem}", file=sys.stderr)
        return None


def _config(args: argparse.Namespace) -> int:
    settings = _load()
    if settings is None:
        return 1
    if args.check:
        print(f"configuration ok: {len(settings.flows)} flow(s)")
        return 0
    document = settings.model_dump(mode="json")
    if args.json:
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False))
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = _load()
    if settings is None:
        return 2
    configure_logging(settings.log_level, settings.log_format)
    log = get_logger("aggregator.cli")
    embedded: RedisServer | None = None
    if settings.redis_url is None:
        # State hashes hold branch records of a few hundred bytes: kept as listpacks, they
        # take a fifth less memory (docs/benchmarks.md). (The 6.2 name, which 7.x still takes.)
        embedded = RedisServer(EMBEDDED_REDIS_DIR, "--hash-max-ziplist-value", "1024")
        try:
            url = embedded.start()
        except RedisServerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        log.info(
            "embedded redis started: no AGGREGATOR_REDIS_URL set, for local use only",
            redis_url=url,
            data_dir=str(EMBEDDED_REDIS_DIR),
        )
        # Worker processes load their configuration from the environment.
        os.environ["AGGREGATOR_REDIS_URL"] = url
    metrics_dir = _multiprocess_metrics(args.workers)
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down; make them unwind through
    # `finally` so the embedded Redis is stopped too.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    config = uvicorn.Config(
        "aggregator.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        # Half the shutdown budget for requests in flight; the lifespan gives the other
        # half to deliveries under way.
        timeout_graceful_shutdown=int(settings.shutdown_timeout.total_seconds() / 2),
        server_header=False,
    )
    try:
        if args.workers > 1:
            port = SharedPort(args.host, args.port, config.backlog)
            log.info("listening", address=f"{args.host}:{args.port}", workers=args.workers)
            Multiprocess(config, sockets=[port]).run()
        else:
            server = uvicorn.Server(config)
            server.run()
            if not server.started:
                return 3
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if embedded is not None:
            embedded.stop()
            log.info("embedded redis stopped")
    return 0


def _multiprocess_metrics(workers: int) -> str | None:
    """Several workers share their counters through files (prometheus-client's multiprocess
    mode); /dev/shm is memory, and writable under a read-only root filesystem."""
    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    shm = Path("/dev/shm")  # noqa: S108
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    directory = tempfile.mkdtemp(prefix="aggregator-metrics-", dir=base)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def _exit_on_signal(signum: int, frame: object) -> None:
    # uvicorn has already shut down gracefully when it re-raises the signal: a clean exit.
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _config(args)
