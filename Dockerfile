# Keyboardia's native host in a container: the one `keyboardia` binary (web app and built-in
# kit inside), its data in the /data volume.
#
#   docker build -t keyboardia .
#   docker run -p 8787:8787 -v keyboardia-data:/data keyboardia
#
# The build stage uses the same command as everyone else (`cargo xtask dist`); the image that
# runs holds only the binary.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN rustup target add wasm32-unknown-unknown \
 && cargo xtask dist \
 && cp target/release/keyboardia /keyboardia

FROM debian:bookworm-slim
RUN useradd --system --create-home --home-dir /data keyboardia
COPY --from=build /keyboardia /usr/local/bin/keyboardia
USER keyboardia
VOLUME /data
EXPOSE 8787
ENV KEYBOARDIA_ADDR=0.0.0.0:8787 \
    KEYBOARDIA_DATA_DIR=/data
CMD ["keyboardia"]
