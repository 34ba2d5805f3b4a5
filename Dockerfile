# Build: docker build -t webdav-bridge .
# Try:   docker run --rm -p 127.0.0.1:8080:8080 -e BRIDGE_PASSWORD=secret \
#          -v bridge-data:/data -v bridge-state:/state webdav-bridge
#        (no config: serves /data at http://127.0.0.1:8080/local/ for user admin)
# Own config: append `serve -config /config/config.toml` and add
#          -v "$PWD/config.toml:/config/config.toml:ro"; in it use
#          listen = "0.0.0.0:8080", state_dir = "/state" and, for the local
#          driver, root = "/data".
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The same package CI's end-to-end tests build (`go build -o ... .`).
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bridge .
# The volumes' mount points, to be copied owned by nonroot: a fresh named
# volume takes the owner of the image's folder, else root's, and the bridge
# (running as nonroot) could not write to it.
RUN mkdir -p /out/data /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bridge /usr/local/bin/bridge
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/state /state
# Without a config the bridge serves ./data and keeps its state in ./state:
# from / these are the two volumes. 127.0.0.1 would not be reachable from
# outside the container.
WORKDIR /
ENV BRIDGE_LISTEN=0.0.0.0:8080
VOLUME ["/data", "/state"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/bridge"]
CMD ["serve"]
