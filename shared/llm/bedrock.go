package llm

import (
	"net/http"

	"github.com/wardenhq/warden/shared/pipeline"
)

// registerBedrock adds the routes of Claude Code's Bedrock mode
// (ANTHROPIC_BEDROCK_BASE_URL=<warden>/bedrock). Not built yet.
func (g *Gateway) registerBedrock(mux *http.ServeMux) {}

// forwardBedrock calls a Bedrock upstream with an Anthropic Messages
// request, translated, and streams the answer back as Anthropic SSE. Not
// built yet: such a call is refused.
func (g *Gateway) forwardBedrock(w http.ResponseWriter, r *http.Request, c *call, hold pipeline.Hold) {
	g.finish(r.Context(), c, hold, outcome{status: "bedrock not built"})
	c.front.refuse(w, http.StatusNotImplemented, "Warden cannot call Bedrock upstreams yet")
}
