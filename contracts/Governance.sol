// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// The part of Registry that Governance uses.
interface IApiaryRegistry {
    function nodeOwner(bytes32 nodeKey) external view returns (address owner, uint256 registeredBlock);
    function nodeCount(address owner) external view returns (uint256);
    function setVerified(bytes32 modelHash, bool verified) external;
    function delistNode(bytes32 nodeKey) external;
}

/// @title apiary governance: one registered node, one vote
/// @notice A node owner proposes one of two actions on the Registry: mark a model verified
/// or unverified, or delist a node. Every node key registered before the proposal's block
/// may vote once (cast by its owner address; recorded per key, so a key re-registered under
/// another owner cannot vote again). A proposal passes when, at the end of the voting
/// period, it has at least `quorum` votes for and more for than against; it can then be
/// executed by anyone once `timelock` more seconds have passed, exactly once.
contract Governance {
    enum Action { SetVerified, DelistNode }           // target: model hash | node key
    enum State { Active, Defeated, Queued, Ready, Executed }

    struct Proposal {
        bytes32 target;     // model sha256 (SetVerified) or node key (DelistNode)
        address proposer;   // msg.sender of propose
        Action action;
        bool value;         // verified flag for SetVerified; ignored for DelistNode
        bool executed;
        uint64 startBlock;  // nodes registered in this block or later cannot vote
        uint64 voteEnd;     // unix seconds: voting closes
        uint64 eta;         // unix seconds: voteEnd + timelock, earliest execution
        uint32 forVotes;
        uint32 againstVotes;
    }

    IApiaryRegistry public immutable registry;
    uint32 public immutable quorum;        // minimum votes for
    uint64 public immutable votingPeriod;  // seconds
    uint64 public immutable timelock;      // seconds between the vote's end and execution

    /// Proposal ids start at 1; 0 is never a proposal.
    uint256 public proposalCount;
    mapping(uint256 => Proposal) private _proposals;
    mapping(uint256 => mapping(bytes32 => bool)) public hasVoted;

    event Proposed(uint256 indexed proposalId, address indexed proposer, Action action, bytes32 indexed target,
                   bool value, uint64 voteEnd, uint64 eta);
    event Voted(uint256 indexed proposalId, bytes32 indexed nodeKey, address indexed voter, bool support);
    event Executed(uint256 indexed proposalId, Action action, bytes32 indexed target, bool value);

    error ZeroAddress();
    error ZeroQuorum();
    error ZeroTarget();
    error NoRegisteredNode(address caller);
    error UnknownProposal(uint256 proposalId);
    error VotingClosed(uint256 proposalId);
    error NotNodeOwner(bytes32 nodeKey, address caller);
    error NodeTooNew(bytes32 nodeKey);
    error AlreadyVoted(uint256 proposalId, bytes32 nodeKey);
    error NotReady(uint256 proposalId, State state);

    constructor(address registry_, uint32 quorum_, uint64 votingPeriod_, uint64 timelock_) {
        if (registry_ == address(0)) revert ZeroAddress();
        if (quorum_ == 0) revert ZeroQuorum();
        registry = IApiaryRegistry(registry_);
        quorum = quorum_;
        votingPeriod = votingPeriod_;
        timelock = timelock_;
    }

    /// Opens a proposal; the caller must own at least one registered node.
    function propose(Action action, bytes32 target, bool value) external returns (uint256 proposalId) {
        if (target == bytes32(0)) revert ZeroTarget();
        if (registry.nodeCount(msg.sender) == 0) revert NoRegisteredNode(msg.sender);
        proposalId = ++proposalCount;
        uint64 end = uint64(block.timestamp) + votingPeriod;
        Proposal storage p = _proposals[proposalId];
        p.target = target;
        p.proposer = msg.sender;
        p.action = action;
        p.value = action == Action.SetVerified ? value : false;
        p.startBlock = uint64(block.number);
        p.voteEnd = end;
        p.eta = end + timelock;
        emit Proposed(proposalId, msg.sender, action, target, p.value, end, p.eta);
    }

    /// Casts `nodeKey`'s vote; the caller must be the key's registered owner.
    function vote(uint256 proposalId, bytes32 nodeKey, bool support) external {
        Proposal storage p = _open(proposalId);
        _count(p, proposalId, nodeKey, support);
    }

    /// Casts the votes of several node keys owned by the caller.
    function voteMany(uint256 proposalId, bytes32[] calldata nodeKeys, bool support) external {
        Proposal storage p = _open(proposalId);
        for (uint256 i = 0; i < nodeKeys.length; ++i) _count(p, proposalId, nodeKeys[i], support);
    }

    /// Applies a passed proposal after its timelock. Anyone may call it, once.
    function execute(uint256 proposalId) external {
        State s = state(proposalId);
        if (s != State.Ready) revert NotReady(proposalId, s);
        Proposal storage p = _proposals[proposalId];
        p.executed = true;
        if (p.action == Action.SetVerified) registry.setVerified(p.target, p.value);
        else registry.delistNode(p.target);
        emit Executed(proposalId, p.action, p.target, p.value);
    }

    function state(uint256 proposalId) public view returns (State) {
        Proposal storage p = _proposals[proposalId];
        if (p.proposer == address(0)) revert UnknownProposal(proposalId);
        if (p.executed) return State.Executed;
        if (block.timestamp < p.voteEnd) return State.Active;
        if (p.forVotes < quorum || p.forVotes <= p.againstVotes) return State.Defeated;
        if (block.timestamp < p.eta) return State.Queued;
        return State.Ready;
    }

    function getProposal(uint256 proposalId) external view returns (Proposal memory) {
        return _proposals[proposalId];
    }

    function _open(uint256 proposalId) private view returns (Proposal storage p) {
        p = _proposals[proposalId];
        if (p.proposer == address(0)) revert UnknownProposal(proposalId);
        if (block.timestamp >= p.voteEnd) revert VotingClosed(proposalId);
    }

    function _count(Proposal storage p, uint256 proposalId, bytes32 nodeKey, bool support) private {
        (address owner, uint256 regBlock) = registry.nodeOwner(nodeKey);
        if (owner != msg.sender || owner == address(0)) revert NotNodeOwner(nodeKey, msg.sender);
        if (regBlock >= p.startBlock) revert NodeTooNew(nodeKey);
        if (hasVoted[proposalId][nodeKey]) revert AlreadyVoted(proposalId, nodeKey);
        hasVoted[proposalId][nodeKey] = true;
        if (support) p.forVotes++;
        else p.againstVotes++;
        emit Voted(proposalId, nodeKey, msg.sender, support);
    }
}
