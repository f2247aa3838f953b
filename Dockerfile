# The conveyor binary in a small image, for docker-compose.yml.
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libhiredis-dev libpq-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN swift build -c release --product conveyor --static-swift-stdlib \
    && cp .build/release/conveyor /usr/local/bin/conveyor

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libhiredis0.14 libpq5 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/conveyor /usr/local/bin/conveyor
ENTRYPOINT ["conveyor"]
