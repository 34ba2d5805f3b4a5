# Build: docker build -t webdav-bridge .
# Run:   docker run -p 8080:8080 -v bridge-config:/config -v bridge-state:/state \
#          -v bridge-data:/data webdav-bridge
# The image expects /config/config.toml; use `listen = "0.0.0.0:8080"`,
# `state_dir = "/state"` and, for the local driver, `root = "/data"` in it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bridge .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bridge /usr/local/bin/bridge
VOLUME ["/config", "/state", "/data"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/bridge"]
CMD ["serve", "-config", "/config/config.toml"]
