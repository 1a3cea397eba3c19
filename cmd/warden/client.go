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
	// signer, if not nil, signs each request with SigV4 (the admin API of
	// a deployment on AWS) instead of sending a token.
	signer *sigv4Signer
}

// clientFlags adds --endpoint and --token to a command and returns a
// constructor for the client. The token defaults to tokenEnv. With sign
// set (the admin commands), a deployment on AWS is reached with SigV4
// instead of a token: see sigv4Region.
func clientFlags(cmd *cobra.Command, tokenEnv, tokenHelp string, sign bool) func() (*apiClient, error) {
	var endpoint, token, region string
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "Warden endpoint (default $WARDEN_ENDPOINT or "+DefaultEndpoint+")")
	if tokenEnv != "" {
		cmd.Flags().StringVar(&token, "token", "", tokenHelp+" (default $"+tokenEnv+")")
	}
	if sign {
		cmd.Flags().StringVar(&region, "aws-region", "", "sign requests with your AWS credentials (SigV4) for API Gateway in this region; automatic for an execute-api endpoint")
	}
	return func() (*apiClient, error) {
		if endpoint == "" {
			endpoint = os.Getenv("WARDEN_ENDPOINT")
		}
		if endpoint == "" {
			endpoint = DefaultEndpoint
		}
		c := &apiClient{endpoint: strings.TrimRight(endpoint, "/"), http: &http.Client{Timeout: 90 * time.Second}}
		if r := sigv4Region(endpoint, region); sign && r != "" {
			s, err := newSigV4Signer(cmd.Context(), r)
			if err != nil {
				return nil, err
			}
			c.signer = s
			return c, nil
		}
		if token == "" && tokenEnv != "" {
			token = os.Getenv(tokenEnv)
		}
		if tokenEnv != "" && token == "" {
			return nil, fmt.Errorf("no token: set $%s or pass --token", tokenEnv)
		}
		c.token = token
		return c, nil
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
	var payload []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		payload = b
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, bytes.NewReader(payload))
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
	if c.signer != nil {
		if err := c.signer.sign(ctx, req, payload); err != nil {
			return nil, err
		}
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
			Error   string `json:"error"`
			Message string `json:"message"` // API Gateway's own refusals
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		if e.Message != "" {
			return nil, fmt.Errorf("%s %s: %s (HTTP %d from the gateway)", method, path, e.Message, resp.StatusCode)
		}
		return nil, fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s: the answer is larger than %d bytes", method, path, limit)
	}
	return data, nil
}
