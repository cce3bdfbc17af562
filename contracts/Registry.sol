// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title apiary model and node registry
/// @notice Models: the sha256 of a GGUF file -> metadata and the publisher who listed it.
/// Nodes: an Ed25519 node public key (32 bytes) -> the Ethereum address that owns it, an
/// endpoint hint, and the node's own Ed25519 signature over that hint.
///
/// The owner proves the binding on chain with an EIP-712 signature
/// `NodeBinding(bytes32 nodeKey,address owner,uint256 nonce)` (domain name
/// "apiary-registry", version "1"). The node's consent (its Ed25519 signature over
/// `hintMessage(...)`) is too costly to check in the EVM, so it is only stored: clients MUST
/// verify it off chain before trusting a registration, and treat a node whose signature
/// does not verify as unregistered. Governance can delist such squatters; a delisted
/// (nodeKey, owner) pair cannot register again.
///
/// `setVerified` and `delistNode` are reserved to the Governance contract, fixed once by
/// the deployer with `setGovernance`.
contract Registry {
    // ---------------------------------------------------------------- limits

    uint256 public constant MAX_NAME = 128;    // bytes of a model name
    uint256 public constant MAX_LICENSE = 64;  // bytes of a license id (SPDX)
    uint256 public constant MAX_URI = 512;     // bytes of a source URI
    uint256 public constant MAX_HINT = 256;    // bytes of an endpoint hint
    uint256 public constant NODE_SIG_LEN = 64; // an Ed25519 signature R ‖ S

    // ---------------------------------------------------------------- storage

    struct Model {
        string name;          // human name, e.g. "qwen2.5-0.5b-instruct-q4_k_m"
        string license;       // SPDX id or short license name
        string sourceUri;     // where to fetch the GGUF (https, magnet, ...)
        address publisher;    // msg.sender of addModel; the only one who may edit
        bool verified;        // set by Governance; cleared by every update
        uint64 registeredAt;  // block timestamp of addModel
    }

    struct Node {
        address owner;          // Ethereum address that proved the binding
        uint48 registeredAt;    // block timestamp of registerNode
        uint48 registeredBlock; // block number of registerNode (Governance vote eligibility)
        string endpointHint;    // e.g. "tcp://203.0.113.7:7946" or a DHT hint; unverified
        bytes nodeSig;          // Ed25519 signature by nodeKey over hintMessage(...)
    }

    mapping(bytes32 => Model) private _models;
    mapping(bytes32 => Node) private _nodes;
    /// Registered node keys per owner.
    mapping(address => uint256) public nodeCount;
    /// NodeBinding nonce per owner: the next signature must carry this value.
    mapping(address => uint256) public bindingNonces;
    /// keccak256(abi.encode(nodeKey, owner)) -> delisted by Governance.
    mapping(bytes32 => bool) public banned;

    address public immutable deployer;
    address public governance;

    bytes32 public constant NODE_BINDING_TYPEHASH =
        keccak256("NodeBinding(bytes32 nodeKey,address owner,uint256 nonce)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("apiary-registry");
    bytes32 private constant VERSION_HASH = keccak256("1");
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    bytes32 private immutable _cachedDomain;
    uint256 private immutable _cachedChainId;

    // ---------------------------------------------------------------- events

    event GovernanceSet(address indexed governance);
    event ModelAdded(bytes32 indexed modelHash, address indexed publisher, string name);
    event ModelUpdated(bytes32 indexed modelHash, address indexed publisher, string name);
    event ModelRemoved(bytes32 indexed modelHash, address indexed publisher);
    event ModelVerified(bytes32 indexed modelHash, bool verified);
    event NodeRegistered(bytes32 indexed nodeKey, address indexed owner, string endpointHint);
    event NodeUpdated(bytes32 indexed nodeKey, address indexed owner, string endpointHint);
    event NodeRemoved(bytes32 indexed nodeKey, address indexed owner);
    event NodeDelisted(bytes32 indexed nodeKey, address indexed owner);

    // ---------------------------------------------------------------- errors

    error NotDeployer(address caller);
    error NotGovernance(address caller);
    error GovernanceAlreadySet(address governance);
    error ZeroAddress();
    error ZeroKey();
    error EmptyName();
    error TooLong(string field, uint256 length, uint256 max);
    error ModelExists(bytes32 modelHash);
    error UnknownModel(bytes32 modelHash);
    error NotPublisher(address caller, address publisher);
    error NodeExists(bytes32 nodeKey, address owner);
    error UnknownNode(bytes32 nodeKey);
    error NotNodeOwner(address caller, address owner);
    error NodeBanned(bytes32 nodeKey, address owner);
    error BadNodeSignatureLength(uint256 length);
    error BadSignatureLength(uint256 length);
    error BadSignatureV(uint8 v);
    error BadSignatureS();
    error InvalidSignature();
    error WrongSigner(address recovered, address expected);

    modifier onlyGovernance() {
        if (msg.sender != governance || governance == address(0)) revert NotGovernance(msg.sender);
        _;
    }

    constructor() {
        deployer = msg.sender;
        _cachedChainId = block.chainid;
        _cachedDomain = _buildDomain();
    }

    /// One-time: fixes the Governance contract. Deployer only.
    function setGovernance(address gov) external {
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        if (governance != address(0)) revert GovernanceAlreadySet(governance);
        if (gov == address(0)) revert ZeroAddress();
        governance = gov;
        emit GovernanceSet(gov);
    }

    // ---------------------------------------------------------------- models

    function addModel(bytes32 modelHash, string calldata name, string calldata license, string calldata sourceUri)
        external
    {
        if (modelHash == bytes32(0)) revert ZeroKey();
        if (_models[modelHash].publisher != address(0)) revert ModelExists(modelHash);
        _checkModelFields(name, license, sourceUri);
        Model storage m = _models[modelHash];
        m.name = name;
        m.license = license;
        m.sourceUri = sourceUri;
        m.publisher = msg.sender;
        m.registeredAt = uint64(block.timestamp);
        emit ModelAdded(modelHash, msg.sender, name);
    }

    /// Replaces the metadata. Publisher only. Clears `verified`: Governance verified the
    /// old metadata (license, source), not the new one.
    function updateModel(bytes32 modelHash, string calldata name, string calldata license, string calldata sourceUri)
        external
    {
        Model storage m = _publisherModel(modelHash);
        _checkModelFields(name, license, sourceUri);
        m.name = name;
        m.license = license;
        m.sourceUri = sourceUri;
        if (m.verified) {
            m.verified = false;
            emit ModelVerified(modelHash, false);
        }
        emit ModelUpdated(modelHash, msg.sender, name);
    }

    function removeModel(bytes32 modelHash) external {
        _publisherModel(modelHash);
        delete _models[modelHash];
        emit ModelRemoved(modelHash, msg.sender);
    }

    /// An unknown hash returns a Model with publisher == address(0).
    function getModel(bytes32 modelHash) external view returns (Model memory) {
        return _models[modelHash];
    }

    function setVerified(bytes32 modelHash, bool verified) external onlyGovernance {
        Model storage m = _models[modelHash];
        if (m.publisher == address(0)) revert UnknownModel(modelHash);
        m.verified = verified;
        emit ModelVerified(modelHash, verified);
    }

    // ---------------------------------------------------------------- nodes

    /// Binds `nodeKey` to msg.sender. `ownerSig` is msg.sender's EIP-712 signature over
    /// NodeBinding(nodeKey, msg.sender, bindingNonces[msg.sender]); `nodeSig` is the node's
    /// Ed25519 signature over hintMessage(nodeKey, msg.sender, endpointHint), stored for
    /// off-chain verification only.
    function registerNode(bytes32 nodeKey, string calldata endpointHint, bytes calldata nodeSig,
                          bytes calldata ownerSig) external
    {
        if (nodeKey == bytes32(0)) revert ZeroKey();
        Node storage n = _nodes[nodeKey];
        if (n.owner != address(0)) revert NodeExists(nodeKey, n.owner);
        if (banned[keccak256(abi.encode(nodeKey, msg.sender))]) revert NodeBanned(nodeKey, msg.sender);
        _checkHint(endpointHint, nodeSig);
        uint256 nonce = bindingNonces[msg.sender]++;
        address who = _recover(bindingDigest(nodeKey, msg.sender, nonce), ownerSig);
        if (who != msg.sender) revert WrongSigner(who, msg.sender);
        n.owner = msg.sender;
        n.registeredAt = uint48(block.timestamp);
        n.registeredBlock = uint48(block.number);
        n.endpointHint = endpointHint;
        n.nodeSig = nodeSig;
        nodeCount[msg.sender]++;
        emit NodeRegistered(nodeKey, msg.sender, endpointHint);
    }

    /// Replaces the endpoint hint and the node's signature over it. Owner only.
    function updateNode(bytes32 nodeKey, string calldata endpointHint, bytes calldata nodeSig) external {
        Node storage n = _ownedNode(nodeKey);
        _checkHint(endpointHint, nodeSig);
        n.endpointHint = endpointHint;
        n.nodeSig = nodeSig;
        emit NodeUpdated(nodeKey, msg.sender, endpointHint);
    }

    function removeNode(bytes32 nodeKey) external {
        _ownedNode(nodeKey);
        delete _nodes[nodeKey];
        nodeCount[msg.sender]--;
        emit NodeRemoved(nodeKey, msg.sender);
    }

    /// Removes a node and bars its owner from binding that key again. Governance only.
    function delistNode(bytes32 nodeKey) external onlyGovernance {
        address owner = _nodes[nodeKey].owner;
        if (owner == address(0)) revert UnknownNode(nodeKey);
        delete _nodes[nodeKey];
        nodeCount[owner]--;
        banned[keccak256(abi.encode(nodeKey, owner))] = true;
        emit NodeDelisted(nodeKey, owner);
    }

    /// An unknown key returns a Node with owner == address(0).
    function getNode(bytes32 nodeKey) external view returns (Node memory) {
        return _nodes[nodeKey];
    }

    /// Owner and registration block only (cheap; used by Governance).
    function nodeOwner(bytes32 nodeKey) external view returns (address owner, uint256 registeredBlock) {
        Node storage n = _nodes[nodeKey];
        return (n.owner, n.registeredBlock);
    }

    // ---------------------------------------------------------------- signing helpers

    function domainSeparator() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomain : _buildDomain();
    }

    /// The EIP-712 digest the owner signs for registerNode.
    function bindingDigest(bytes32 nodeKey, address owner, uint256 nonce) public view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(NODE_BINDING_TYPEHASH, nodeKey, owner, nonce));
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
    }

    /// The exact bytes the node signs with Ed25519 for its endpoint hint:
    /// "apiary-endpoint-hint-v1" (23 bytes) ‖ chainId (32, big-endian) ‖ this registry (20)
    /// ‖ nodeKey (32) ‖ owner (20) ‖ endpointHint (UTF-8, rest).
    function hintMessage(bytes32 nodeKey, address owner, string calldata endpointHint)
        external view returns (bytes memory)
    {
        return abi.encodePacked("apiary-endpoint-hint-v1", block.chainid, address(this), nodeKey, owner,
                                endpointHint);
    }

    // ---------------------------------------------------------------- internals

    function _buildDomain() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _publisherModel(bytes32 modelHash) private view returns (Model storage m) {
        m = _models[modelHash];
        if (m.publisher == address(0)) revert UnknownModel(modelHash);
        if (m.publisher != msg.sender) revert NotPublisher(msg.sender, m.publisher);
    }

    function _ownedNode(bytes32 nodeKey) private view returns (Node storage n) {
        n = _nodes[nodeKey];
        if (n.owner == address(0)) revert UnknownNode(nodeKey);
        if (n.owner != msg.sender) revert NotNodeOwner(msg.sender, n.owner);
    }

    function _checkModelFields(string calldata name, string calldata license, string calldata sourceUri)
        private pure
    {
        if (bytes(name).length == 0) revert EmptyName();
        if (bytes(name).length > MAX_NAME) revert TooLong("name", bytes(name).length, MAX_NAME);
        if (bytes(license).length > MAX_LICENSE) revert TooLong("license", bytes(license).length, MAX_LICENSE);
        if (bytes(sourceUri).length > MAX_URI) revert TooLong("sourceUri", bytes(sourceUri).length, MAX_URI);
    }

    function _checkHint(string calldata endpointHint, bytes calldata nodeSig) private pure {
        if (bytes(endpointHint).length > MAX_HINT) revert TooLong("endpointHint", bytes(endpointHint).length, MAX_HINT);
        if (nodeSig.length != NODE_SIG_LEN) revert BadNodeSignatureLength(nodeSig.length);
    }

    function _recover(bytes32 digest, bytes calldata sig) private pure returns (address) {
        if (sig.length != 65) revert BadSignatureLength(sig.length);
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (v != 27 && v != 28) revert BadSignatureV(v);
        if (uint256(s) > HALF_N) revert BadSignatureS();
        address a = ecrecover(digest, v, r, s);
        if (a == address(0)) revert InvalidSignature();
        return a;
    }
}
