package server

import "net/http"

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
