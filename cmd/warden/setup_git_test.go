package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/shared/gitproxy/gittest"
)

// TestSetupGitPushLimit: against a Warden whose git remote has a push
// limit (on AWS), agent setup sets git's post buffer to it for Warden's
// remote alone and announces it in a header, as git itself then reads
// them for a repository's URL; without a limit it writes neither.
func TestSetupGitPushLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, status string
		buffer       string
	}{
		{"limit", `{"hosts":["github.com"],"max_push_bytes":4669440}`, "4669440"},
		{"none", `{"hosts":["github.com"]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/git" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(tc.status))
			}))
			t.Cleanup(srv.Close)
			path := filepath.Join(t.TempDir(), "gitconfig")
			var out bytes.Buffer
			cmd := &cobra.Command{}
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetContext(t.Context())
			c := &apiClient{endpoint: srv.URL, token: "wdn_s_test", http: srv.Client()}
			if err := setupGit(cmd, c, setupOptions{gitconfig: path, token: "wdn_s_test"}, "/usr/local/bin/warden"); err != nil {
				t.Fatal(err)
			}
			env := append(gittest.Env(t.TempDir()), "GIT_CONFIG_GLOBAL="+path)
			get := func(key, url string) string {
				got, _ := gittest.Run("", env, "config", "--get-urlmatch", key, url)
				return strings.TrimSpace(got)
			}
			repo := srv.URL + "/git/github.com/acme/web.git"
			if got := get("http.postBuffer", repo); got != tc.buffer {
				t.Errorf("http.postBuffer for %s: %q, want %q", repo, got, tc.buffer)
			}
			wantHeader := ""
			if tc.buffer != "" {
				wantHeader = "X-Warden-Git-Post-Buffer: " + tc.buffer
			}
			if got := get("http.extraHeader", repo); got != wantHeader {
				t.Errorf("http.extraHeader for %s: %q, want %q", repo, got, wantHeader)
			}
			// Other remotes keep git's defaults.
			if got := get("http.postBuffer", "https://gitlab.com/acme/web.git"); got != "" {
				t.Errorf("http.postBuffer for another host: %q", got)
			}
			if got, _ := gittest.Run("", env, "config", "--global", "--get", "url."+srv.URL+"/git/github.com/.insteadOf"); strings.TrimSpace(got) != "https://github.com/" {
				t.Errorf("insteadOf: %q", got)
			}
			if tc.buffer != "" && !strings.Contains(out.String(), "pushes of up to 4669440 bytes") {
				t.Errorf("setup's output does not say the limit:\n%s", out.String())
			}
		})
	}
}
