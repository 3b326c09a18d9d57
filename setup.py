"""cranewatch: security-event correlation for ship-to-shore crane OT, on Apache Beam."""
from setuptools import find_packages, setup

setup(
    name="cranewatch",
    version="0.1.0",
    description=(
        "Correlates crane OT, network-flow and vendor remote-access logs into incidents "
        "and shares them as STIX 2.1 bundles (batch on Beam's local runner, streaming on Prism or any Beam job server)."
    ),
    python_requires=">=3.11",
    packages=find_packages(include=["pipelines*", "transforms*", "detections*", "stix_export*"]),
    package_data={
        "detections": ["*.yml", "builtin/*.yml", "builtin/testdata/*.json", "sigma/*.yml"],
        "stix_export": ["*.yml", "*.json"],
        "pipelines.html_report": ["templates/*.j2", "templates/*.css"],
        "pipelines.mandated": ["templates/*.j2", "regimes/*.yml"],
    },
    install_requires=[
        # The SDK must match the Flink job-server jar version; see docs/beam-version.md.
        "apache-beam>=2.77.0,<2.78",
        "pyarrow>=18.0",
        "pyyaml>=6.0.1",
        "pydantic>=2.7",
        "stix2>=3.0.2",
        "stix2-validator>=3.3.1",
        "rich>=13.7",
        "zstandard>=0.22",
        "isal>=1.9.1,<2",  # .gz inputs: ISA-L inflates Zeek logs ~2.3x faster than zlib (transforms/read.py)
        "taxii2-client>=2.3.0,<3",  # cranewatch share / intel import --taxii
        "jinja2>=3.1",  # report.html: autoescaped templates (log lines are hostile input)
        "orjson>=3.10",  # STIX bundles' canonical JSON, same bytes as json.dumps(indent=2), faster
        # Sigma rules: parsing, modifiers, conditions, correlations and processing pipelines
        # come from pySigma (detections/sigma_engine), never from a parser of our own.
        "pysigma>=2.0.1,<3",
        "confluent-kafka>=2.16,<3",  # the Kafka source (transforms/kafka_source.py): librdkafka's consumer
    ],
    extras_require={
        # misp-stix pulls pymisp and pins requests/setuptools ranges; it installs beside
        # apache-beam 2.77 with `pip check` clean (checked with misp-stix 2026.10.12).
        "test": ["pytest>=8.0", "duckdb>=1.1", "misp-stix>=2026.10.12", "medallion>=3.0.0,<4",
                 # drives the system Chromium (never downloads a browser) for the report test
                 "playwright>=1.49", "hypothesis>=6.170",
                 # an independent Sigma engine: the differential test runs each rule as SQL in SQLite
                 "pysigma-backend-sqlite>=2.1.1,<3"],
        "bench": ["duckdb>=1.1"],
    },
    entry_points={
        "console_scripts": ["cranewatch=pipelines.cli:main"],
        # Third-party detection packages register here (see docs/detections.md).
        "cranewatch.detections": [],
        # National reporting regimes register here (see docs/mandated-reports.md).
        "cranewatch.regimes": [],
    },
)
