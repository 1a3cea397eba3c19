package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// DefaultEndpoint is where `warden serve` listens unless told otherwise.
const DefaultEndpoint = "http://127.0.0.1:8080"

// apiClient calls a Warden server's HTTP API.
type apiClient struct {
	endpoint string
	token    string
	http     *http.Client
}

// clientFlags adds --endpoint and --token to a command and returns a
// constructor for the client. The token defaults to tokenEnv.
func clientFlags(cmd *cobra.Command, tokenEnv, tokenHelp string) func() (*apiClient, error) {
	var endpoint, token string
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "Warden endpoint (default $WARDEN_ENDPOINT or "+DefaultEndpoint+")")
	if tokenEnv != "" {
		cmd.Flags().StringVar(&token, "token", "", tokenHelp+" (default $"+tokenEnv+")")
	}
	return func() (*apiClient, error) {
		if endpoint == "" {
			endpoint = os.Getenv("WARDEN_ENDPOINT")
		}
		if endpoint == "" {
			endpoint = DefaultEndpoint
		}
		if token == "" && tokenEnv != "" {
			token = os.Getenv(tokenEnv)
		}
		if tokenEnv != "" && token == "" {
			return nil, fmt.Errorf("no token: set $%s or pass --token", tokenEnv)
		}
		return &apiClient{endpoint: strings.TrimRight(endpoint, "/"), token: token, http: &http.Client{Timeout: 90 * time.Second}}, nil
	}
}

// call sends a JSON request and decodes a JSON answer into out. A non-2xx
// answer becomes an error carrying the server's message.
func (c *apiClient) call(ctx context.Context, method, path string, in, out any) error {
	data, err := c.do(ctx, method, path, in, 16<<20)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}

// do sends a request and returns the answer's body, of at most limit bytes.
func (c *apiClient) do(ctx context.Context, method, path string, in any, limit int64) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if u := os.Getenv("USER"); u != "" {
		req.Header.Set("X-Warden-Actor", u)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w (is `warden serve` running?)", method, c.endpoint+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return nil, fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s: the answer is larger than %d bytes", method, path, limit)
	}
	return data, nil
}
