# The sidecar image: a static binary on a minimal non-root base.
#   docker build -t agent-sidecar --build-arg VERSION=v0.1.0 .
#   docker run --rm -e CONSUL_HTTP_ADDR=consul:8500 \
#     -v $PWD/my-sidecar.hcl:/etc/sidecar/sidecar.hcl:ro agent-sidecar
# The default configuration is this repository's sidecar.hcl; mount your own
# over it (or add files: every *.hcl in /etc/sidecar is loaded).
# examples/compose/ runs it beside an agent and Consul.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/agent-sidecar/sidecar/internal/version.Version=${VERSION}" \
      -o /out/sidecar ./cmd/sidecar

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sidecar /usr/local/bin/sidecar
COPY sidecar.hcl /etc/sidecar/sidecar.hcl
USER nonroot:nonroot
# The control API listens on loopback by default: containers that share a
# network namespace (a pod; network_mode: service:sidecar) reach it there. Set
# listen { address = "0.0.0.0:7070"  allow_remote = true } and a token to
# expose it.
EXPOSE 7070
# The sidecar's own liveness; the image has no shell, so the binary checks.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/sidecar", "health", "-q"]
# No init process is needed: as PID 1 the sidecar reaps every orphan of the
# container (waitid with WNOWAIT first, so the supervised agent's own exit
# status stays with the supervisor), handles SIGTERM/SIGINT itself (a
# second one exits at once and kills the agent's process group), and, when
# it exits, the kernel ends every process left in the container. Running it
# under an init (docker run --init, tini) works as well: it then makes
# itself a child subreaper and reaps what its agent leaves behind.
ENTRYPOINT ["/usr/local/bin/sidecar"]
CMD ["agent", "-config-dir", "/etc/sidecar"]
