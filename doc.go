// Package sagehost holds the domain types of sagehost, self-hosted Amazon
// SageMaker model hosting, and the interfaces that its other packages
// implement: Store (control-plane persistence), Backend (where model
// containers run) and the application error type that every layer returns.
//
// The packages around it follow ARCHITECTURE.md: api frames both AWS
// protocols, auth verifies SigV4, control validates and persists resources,
// hosting reconciles desired endpoints into running instances through a
// Backend, invoke proxies InvokeEndpoint to those instances, artifact fetches
// model data, and server wires everything into one process.
package sagehost
