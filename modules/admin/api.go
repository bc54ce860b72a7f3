package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"camd/app"
	"camd/jsonbody"
	"camd/platform/clients"
	"camd/platform/password"
)

// BodyLimit caps admin JSON bodies.
const BodyLimit = "4KiB"

// createdClient answers POST /admin/clients: the only time the token is
// shown.
type createdClient struct {
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Token     string    `json:"token"`
	CreatedAt time.Time `json:"created_at"`
}

func (m *Module) createClient(c echo.Context) error {
	body, err := jsonbody.Read(c)
	if err != nil {
		return err
	}
	name, err := body.String("name")
	if err != nil {
		return err
	}
	var scopes []string
	if raw, ok := body["scopes"]; ok {
		if err := json.Unmarshal(raw, &scopes); err != nil || raw[0] != '[' {
			return echo.NewHTTPError(http.StatusBadRequest, "scopes must be an array of strings")
		}
	}
	cl, err := m.clients.Add(name, scopes, m.clock.Now())
	switch {
	case errors.Is(err, clients.ErrExists):
		return echo.NewHTTPError(http.StatusConflict, "a client named "+name+" exists")
	case errors.Is(err, clients.ErrBadName), errors.Is(err, clients.ErrBadScope):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	case err != nil:
		return err
	}
	tok, err := m.tokens.IssueClient(cl.Name, cl.ID, cl.Scopes)
	if err != nil {
		return err
	}
	m.log.Info("created client", "name", cl.Name, "scopes", cl.Scopes)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, createdClient{Name: cl.Name, Scopes: cl.Scopes, Token: tok, CreatedAt: cl.CreatedAt})
}

func (m *Module) listClients(c echo.Context) error {
	list, err := m.clients.List()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (m *Module) deleteClient(c echo.Context) error {
	name := c.Param("name")
	err := m.clients.Remove(name)
	if errors.Is(err, clients.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no client named "+name)
	}
	if err != nil {
		return err
	}
	m.log.Info("revoked client", "name", name)
	return c.NoContent(http.StatusNoContent)
}

func (m *Module) rotateSecret(c echo.Context) error {
	err := m.rotate()
	if errors.Is(err, app.ErrExternalSecret) {
		return echo.NewHTTPError(http.StatusConflict, err.Error())
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"rotated": true})
}

func (m *Module) changePassword(c echo.Context) error {
	body, err := jsonbody.Read(c)
	if err != nil {
		return err
	}
	pw, err := body.String("password")
	if err != nil {
		return err
	}
	if err := password.Validate(pw); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	if err := m.owner.Set(pw, m.clock.Now()); err != nil {
		return err
	}
	m.log.Warn("owner password changed: owner tokens issued before are now refused")
	return c.NoContent(http.StatusNoContent)
}

// adminStatus is what GET /admin/status shows the owner.
type adminStatus struct {
	// TLSFingerprint is the SHA-256 of the HTTPS certificate, to pin in
	// the phone app; null without TLS.
	TLSFingerprint *string `json:"tls_fingerprint"`
	Clients        int     `json:"clients"`
}

func (m *Module) status(c echo.Context) error {
	list, err := m.clients.List()
	if err != nil {
		return err
	}
	st := adminStatus{Clients: len(list)}
	if fp := m.fingerprint(); fp != "" {
		st.TLSFingerprint = &fp
	}
	return c.JSON(http.StatusOK, st)
}
