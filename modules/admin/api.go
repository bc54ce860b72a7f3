package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"camd/apierr"
	"camd/jsonbody"
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
			return apierr.New(apierr.InvalidBody, "scopes must be an array of strings")
		}
	}
	cl, grant, err := m.auth.AddClient(name, scopes)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, createdClient{Name: cl.Name, Scopes: cl.Scopes, Token: grant.Token, CreatedAt: cl.CreatedAt})
}

func (m *Module) listClients(c echo.Context) error {
	list, err := m.auth.Clients()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (m *Module) deleteClient(c echo.Context) error {
	if err := m.auth.RevokeClient(c.Param("name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (m *Module) rotateSecret(c echo.Context) error {
	if err := m.auth.RotateSecret(); err != nil {
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
	if err := m.auth.SetPassword(pw); err != nil {
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
	list, err := m.auth.Clients()
	if err != nil {
		return err
	}
	st := adminStatus{Clients: len(list)}
	if fp := m.fingerprint(); fp != "" {
		st.TLSFingerprint = &fp
	}
	return c.JSON(http.StatusOK, st)
}
