package ike

// IKESAState is the state of an IKE SA, named as charon logs it.
//
//	CREATED ──IKE_SA_INIT──▶ CONNECTING ──IKE_AUTH──▶ ESTABLISHED ◀──┐
//	                              │                      │  │         │
//	                              │              rekey   │  │ rekey   │
//	                              │              started ▼  │ failed  │
//	                              │                  REKEYING ────────┘
//	                              │                      │ new SA up
//	                              │                      ▼
//	                              │                   REKEYED
//	                              ▼                      │
//	                          DELETING ◀─────────────────┘ (INFORMATIONAL delete)
//	                              │
//	                              ▼
//	                          DESTROYING (keys zeroed, SA forgotten)
type IKESAState uint8

const (
	IKESACreated IKESAState = iota
	IKESAConnecting
	IKESAEstablished
	IKESARekeying
	IKESARekeyed
	IKESADeleting
	IKESADestroying
)

func (s IKESAState) String() string {
	switch s {
	case IKESACreated:
		return "CREATED"
	case IKESAConnecting:
		return "CONNECTING"
	case IKESAEstablished:
		return "ESTABLISHED"
	case IKESARekeying:
		return "REKEYING"
	case IKESARekeyed:
		return "REKEYED"
	case IKESADeleting:
		return "DELETING"
	case IKESADestroying:
		return "DESTROYING"
	}
	return "UNKNOWN"
}

// ChildSAState is the state of a CHILD_SA, named as charon logs it.
//
//	CREATED ──SPI allocated──▶ INSTALLING ──SAs + policies──▶ INSTALLED
//	                                                             │  ▲
//	                                               rekey started ▼  │ rekey failed
//	                                                          REKEYING
//	                                                             │ new CHILD_SA installed
//	                                                             ▼
//	                                                          REKEYED
//	                                                             │ delete sent / received
//	                                                             ▼
//	                                   DELETING ──▶ DESTROYING (SAs removed, keys zeroed)
type ChildSAState uint8

const (
	ChildSACreated ChildSAState = iota
	ChildSAInstalling
	ChildSAInstalled
	ChildSARekeying
	ChildSARekeyed
	ChildSADeleting
	ChildSADestroying
)

func (s ChildSAState) String() string {
	switch s {
	case ChildSACreated:
		return "CREATED"
	case ChildSAInstalling:
		return "INSTALLING"
	case ChildSAInstalled:
		return "INSTALLED"
	case ChildSARekeying:
		return "REKEYING"
	case ChildSARekeyed:
		return "REKEYED"
	case ChildSADeleting:
		return "DELETING"
	case ChildSADestroying:
		return "DESTROYING"
	}
	return "UNKNOWN"
}
