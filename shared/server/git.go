package server

import "net/http"

// GitStatus is the answer of GET /v1/git: the hosts the git remote
// proxies, and the largest push it takes when it has a limit (agent setup
// points the agent's remotes for those hosts at Warden, and tells git the
// limit).
type GitStatus struct {
	Hosts        []string `json:"hosts"`
	MaxPushBytes int64    `json:"max_push_bytes,omitempty"`
}

func (s *Server) gitStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, GitStatus{Hosts: append([]string{}, s.GitHosts...), MaxPushBytes: s.GitMaxPush})
}

// git is the git remote, or, when none is configured, a handler that says
// so in git's terms.
func (s *Server) git() http.Handler {
	if s.Git != nil {
		return s.Git
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "warden: this Warden proxies no git host (warden serve --git-config)", http.StatusNotFound)
	})
}
