package blind

import (
	"context"
	"slices"
)

// LocalPeer is a [Peer] served in process by a [Server] to one partner
// with one budget: for tests, and for a node that matches against its own
// blinded sets. Elements are copied as the wire would copy them.
type LocalPeer struct {
	Server  *Server
	Partner string
	Budget  Budget
}

// Info implements [Peer].
func (l *LocalPeer) Info(ctx context.Context) (*EpochInfo, error) {
	return l.Server.Info(ctx, l.Partner, l.Budget)
}

// Set implements [Peer].
func (l *LocalPeer) Set(ctx context.Context, epoch uint64) ([]byte, error) {
	p, err := l.Server.Set(ctx, l.Partner, epoch)
	if err != nil {
		return nil, err
	}
	return slices.Clone(p.Data), nil
}

// Evaluate implements [Peer].
func (l *LocalPeer) Evaluate(ctx context.Context, req *EvalRequest) (*EvalResponse, error) {
	cp := &EvalRequest{Epoch: req.Epoch, Elements: make([][]byte, len(req.Elements))}
	for i, e := range req.Elements {
		cp.Elements[i] = slices.Clone(e)
	}
	return l.Server.Evaluate(ctx, l.Partner, l.Budget, cp)
}
