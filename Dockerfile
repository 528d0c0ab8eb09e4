# One image for both services: `leadbus inference` and `leadbus gateway` (see docker-compose.yml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p leadbus

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/leadbus /usr/local/bin/leadbus
# The public datasets (property catalogue) are mounted here; they are not part of the image.
ENV LEADBUS_DATA_DIR=/data
USER nobody
ENTRYPOINT ["leadbus"]
