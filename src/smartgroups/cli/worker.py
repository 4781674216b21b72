"""``smartgroups worker``: run the processor until SIGTERM or SIGINT, then stop cleanly.

On start it prints a short banner (see :mod:`smartgroups.cli.console` for what it prints and
where), creates the contract's topics that are missing and refuses to start when an existing one
does not fit (partition count, compaction). With ``--demo`` it also publishes the example events
of ``examples/`` once started and prints one line per membership change it emits, so ``make run``
shows the product working end to end.

``--log-format json`` (``SMARTGROUPS_LOG_FORMAT=json``) writes one JSON object per log line.
``--log-level`` (alias ``--loglevel``) is ``debug``, ``info`` (default), ``warning`` or
``error``; faust's and aiokafka's INFO chatter shows only at ``debug``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any, get_args

from smartgroups.cli.connect import check_reachable
from smartgroups.cli.console import LEVELS, banner, configure_logging
from smartgroups.cli.options import add_connection_flags, settings_from
from smartgroups.settings import LogFormat


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("worker", help="run the membership processor")
    add_connection_flags(parser)
    parser.add_argument("--data-dir", type=Path, help="local RocksDB state [SMARTGROUPS_DATA_DIR]")
    parser.add_argument("--web-port", type=int, help="HTTP port [SMARTGROUPS_WEB_PORT]")
    parser.add_argument(
        "--web-host", help="address the HTTP server binds, default 127.0.0.1 [SMARTGROUPS_WEB_HOST]"
    )
    parser.add_argument(
        "--api-tokens-file",
        type=Path,
        metavar="FILE",
        help="query API tokens, 'TOKEN SPACE[,SPACE...]' per line [SMARTGROUPS_API_TOKENS_FILE]",
    )
    parser.add_argument(
        "--insecure-api",
        action="store_true",
        default=None,
        help="serve the query API on a non-loopback address without tokens",
    )
    parser.add_argument(
        "--tick-interval", type=float, help="seconds between time ticks [SMARTGROUPS_TICK_INTERVAL]"
    )
    parser.add_argument(
        "--log-level",
        "--loglevel",
        dest="log_level",
        default="info",
        choices=LEVELS,
        type=str.lower,
        help="info (default) shows smartgroups' lines; debug adds faust's and aiokafka's",
    )
    parser.add_argument(
        "--log-format",
        choices=get_args(LogFormat),
        help="text (default) or json, one object per line [SMARTGROUPS_LOG_FORMAT]",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="publish examples/*.jsonl once started and log every membership change",
    )


def run(args: argparse.Namespace) -> int:
    import faust

    from smartgroups.worker.access import Tokens, check_bind
    from smartgroups.worker.app import create_app
    from smartgroups.worker.clock import OffsetClock, utc_now
    from smartgroups.worker.topology import Topology, ensure_topics

    settings = settings_from(
        args,
        data_dir=args.data_dir,
        web_port=args.web_port,
        tick_interval=args.tick_interval,
        log_format=args.log_format,
        web_host=args.web_host,
        api_tokens_file=args.api_tokens_file,
        insecure_api=args.insecure_api,
    )
    check_bind(settings.web_host, settings.api_tokens_file, settings.insecure_api)
    if settings.api_tokens_file is not None:
        Tokens.load(settings.api_tokens_file)  # a bad file stops the start, in one line
    # The worker's first contact with Kafka is deep in the topic check, then faust: connect once
    # first, so a wrong address, TLS setting or SASL login is one line within the bound.
    check_reachable(settings)
    configure_logging(args.log_level, as_json=settings.log_format == "json")
    if settings.log_format == "json":  # stdout too stays one JSON object per line
        lines = [" ".join(line.split()) for line in banner(settings, demo=args.demo).splitlines()]
        logging.getLogger("smartgroups.worker").info("; ".join(lines))
    else:
        print(banner(settings, demo=args.demo), flush=True)
    logging.getLogger("smartgroups").debug("starting with %r", settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings, Topology.from_settings(settings)))
    clock = OffsetClock(settings.clock_file) if settings.clock_file else utc_now
    runtime = create_app(settings, clock=clock)
    if args.demo:
        from smartgroups.cli.demo import register_demo

        register_demo(runtime)
    worker = faust.Worker(
        runtime.app,
        loop=loop,
        loglevel=args.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    worker.spinner = None  # its cursor codes would reach pipes and log files
    worker.execute_from_commandline()
