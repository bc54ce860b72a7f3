# First version; the deployment work hardens and tests it.
# GO_IMAGE can point at a locally built Go image where no registry is reachable.
ARG GO_IMAGE=golang:1.26
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# RFC 3339; no clock reading before it is trusted.
ARG BUILD_TIME=
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.buildTime=${BUILD_TIME}" -o /out/camd . \
 && mkdir -p /out/data

FROM scratch
COPY --from=build /out/camd /camd
# The data directory belongs to the unprivileged user, so a fresh volume is writable.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV CAMD_DATA_DIR=/data CAMD_LISTEN=:8080
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/camd"]
