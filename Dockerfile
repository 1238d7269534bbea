# The aggregator image: `docker build -t <registry>/knative-aggregator:0.1.0 .`
# Build stage: wheels for the package and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY aggregator ./aggregator
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[otel]"

# Final stage: no compilers, no pip cache, a non-root user.
FROM python:3.11-slim
RUN groupadd --gid 65532 aggregator \
 && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin aggregator
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080
USER 65532:65532
EXPOSE 8080
# `aggregator serve` listens on $PORT (Knative sets it) and needs AGGREGATOR_REDIS_URL.
ENTRYPOINT ["aggregator", "serve"]
