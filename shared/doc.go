// Package shared is the home of Warden's core and its adapters, one Go
// package per concern, built on the policy engine in ../policy:
//
//   - the request pipeline (authenticate, evaluate, approval gate, budgets,
//     write-ahead audit, act) that every enforcement point runs;
//   - sessions and identity, with the kill switch;
//   - the audit trail (hash chain, verify, replay, export);
//   - approvals, budgets, pricing, rate limits and the loop watchdog;
//   - the front ends: LLM gateway, git proxy, agent hooks, STS broker;
//   - notifiers (Slack, Telegram, webhooks);
//   - storage ports with their embedded (SQLite) and AWS (DynamoDB, S3,
//     Step Functions, STS) adapters.
//
// Nothing here exists yet beyond this map; each arrives with its issue.
package shared
