# Multi-stage build: a static sidecar binary on a minimal non-root image.
#   docker build -t agent-sidecar --build-arg VERSION=v0.1.0 .
#   docker run --rm -v $PWD/sidecar.hcl:/etc/sidecar/sidecar.hcl:ro agent-sidecar
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/agent-sidecar/sidecar/sidecar.Version=${VERSION}" \
      -o /out/sidecar ./cmd/sidecar

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sidecar /usr/local/bin/sidecar
USER nonroot:nonroot
# The control API listens on loopback by default: containers of one pod share
# it. Set listen { address = "0.0.0.0:7070"  allow_remote = true } to expose it.
EXPOSE 7070
ENTRYPOINT ["/usr/local/bin/sidecar"]
CMD ["agent", "-config-dir", "/etc/sidecar"]
