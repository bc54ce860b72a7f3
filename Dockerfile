# camd for staging: a static binary in an empty image, run as a non-root user.
#
#   docker build --build-arg BUILD_TIME="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -t camd .
#   docker run -p 8080:8080 -v camd-data:/data -e CAMD_CLOCK=system camd
#
# GO_IMAGE is the official Go image of go.mod's version; point it at a local
# image where no registry is reachable (the tests build one from the host's
# toolchain).
ARG GO_IMAGE=golang:1.26.8
FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules in their own layer: source edits do not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# RFC 3339; no clock reading before it is trusted.
ARG BUILD_TIME=
# nethttpomithttp2: camd serves HTTP/1.1 only, as scripts/dist.sh builds it.
RUN CGO_ENABLED=0 go build -trimpath -tags nethttpomithttp2 -ldflags "-s -w -X main.version=${VERSION} -X main.buildTime=${BUILD_TIME}" -o /out/camd . \
 && mkdir -p /out/data

FROM scratch
COPY --from=build /out/camd /camd
# The data directory belongs to the unprivileged user, so a fresh volume is
# writable; a read-only root file system (--read-only) is fine, camd writes
# nowhere else.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV CAMD_DATA_DIR=/data CAMD_LISTEN=:8080
VOLUME /data
EXPOSE 8080
# No shell or curl in the image: camd probes itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s CMD ["/camd", "healthcheck"]
ENTRYPOINT ["/camd"]
