// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title apiary payment channels
/// @notice A client locks native coin in a channel for one provider and pays off chain by
/// signing vouchers: EIP-712 `Voucher(bytes32 channelId,uint256 amount)` where `amount` is
/// the cumulative total owed so far. The provider (or anyone on its behalf) redeems the
/// latest voucher whenever it likes; each claim pays `amount - claimed`. After `expiry` the
/// client gets back what was never claimed.
///
/// Design points (see docs/contracts.md):
/// - many channels per (client, provider) pair: the id hashes a per-client nonce;
/// - the voucher signer may differ from the client (a hot node key; funds stay cold);
/// - nothing is ever stuck: `refund` is open to anyone once expired (funds go to the
///   client), and the provider can release a channel early by calling `refund` itself;
/// - a provider may claim until the channel is refunded, so a claim a little after expiry
///   still lands if the client has not refunded yet;
/// - state is written before any transfer, and a transient lock blocks re-entry.
contract Escrow {
    // ---------------------------------------------------------------- storage

    struct Channel {
        address client;   // who funded it; receives refunds; may extend
        uint64 expiry;    // unix seconds; refund allowed from this moment
        bool closed;      // refunded: no more claims, top-ups or extensions
        address provider; // receives every claim
        address signer;   // key whose vouchers are accepted
        uint128 deposit;  // total ever deposited (wei)
        uint128 claimed;  // total ever paid to the provider (wei); claimed <= deposit
    }

    mapping(bytes32 => Channel) private _channels;
    /// Number of channels each client has opened; the next one uses this value.
    mapping(address => uint256) public nonces;

    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint256 amount)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("apiary-escrow");
    bytes32 private constant VERSION_HASH = keccak256("1");
    /// secp256k1 n / 2; signatures with a larger s are malleable copies (EIP-2).
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    bytes32 private immutable _cachedDomain;
    uint256 private immutable _cachedChainId;

    bool private transient _locked;

    // ---------------------------------------------------------------- events

    event Opened(bytes32 indexed channelId, address indexed client, address indexed provider,
                 address signer, uint64 expiry, uint256 deposit);
    event ToppedUp(bytes32 indexed channelId, address indexed client, address indexed provider,
                   uint256 added, uint256 deposit);
    event Extended(bytes32 indexed channelId, address indexed client, address indexed provider,
                   uint64 expiry);
    /// `amount` is the voucher's cumulative total, `paid` what this claim transferred.
    event Claimed(bytes32 indexed channelId, address indexed client, address indexed provider,
                  uint256 amount, uint256 paid);
    event Refunded(bytes32 indexed channelId, address indexed client, address indexed provider,
                   uint256 refunded);

    // ---------------------------------------------------------------- errors

    error ZeroAddress();
    error ExpiryNotInFuture(uint64 expiry, uint256 nowTs);
    error ExpiryNotLater(uint64 current, uint64 requested);
    error UnknownChannel(bytes32 channelId);
    error ChannelClosed(bytes32 channelId);
    error NotClient(address caller);
    error NotExpired(uint64 expiry, uint256 nowTs);
    error DepositOverflow();
    error AmountExceedsDeposit(uint256 amount, uint256 deposit);
    error NothingToClaim(uint256 amount, uint256 claimed);
    error BadSignatureLength(uint256 length);
    error BadSignatureV(uint8 v);
    error BadSignatureS();
    error InvalidSignature();
    error WrongSigner(address recovered, address expected);
    error LengthMismatch();
    error TransferFailed(address to, uint256 value);
    error Reentrancy();

    modifier nonReentrant() {
        if (_locked) revert Reentrancy();
        _locked = true;
        _;
        _locked = false;
    }

    constructor() {
        _cachedChainId = block.chainid;
        _cachedDomain = _buildDomain();
    }

    // ---------------------------------------------------------------- client side

    /// Opens a channel funded with msg.value (may be 0 and topped up later).
    function open(address provider, address signer, uint64 expiry)
        external payable returns (bytes32 channelId)
    {
        if (provider == address(0) || signer == address(0)) revert ZeroAddress();
        if (expiry <= block.timestamp) revert ExpiryNotInFuture(expiry, block.timestamp);
        if (msg.value > type(uint128).max) revert DepositOverflow();
        uint256 n = nonces[msg.sender]++;
        channelId = keccak256(abi.encode(msg.sender, provider, n));
        Channel storage c = _channels[channelId];
        c.client = msg.sender;
        c.expiry = expiry;
        c.provider = provider;
        c.signer = signer;
        c.deposit = uint128(msg.value);
        emit Opened(channelId, msg.sender, provider, signer, expiry, msg.value);
    }

    /// Adds msg.value to an open channel. Anyone may fund; refunds still go to the client.
    function topUp(bytes32 channelId) external payable {
        Channel storage c = _live(channelId);
        uint256 d = uint256(c.deposit) + msg.value;
        if (d > type(uint128).max) revert DepositOverflow();
        c.deposit = uint128(d);
        emit ToppedUp(channelId, c.client, c.provider, msg.value, d);
    }

    /// Moves the expiry later. Client only.
    function extend(bytes32 channelId, uint64 newExpiry) external {
        Channel storage c = _live(channelId);
        if (msg.sender != c.client) revert NotClient(msg.sender);
        if (newExpiry <= c.expiry) revert ExpiryNotLater(c.expiry, newExpiry);
        c.expiry = newExpiry;
        emit Extended(channelId, c.client, c.provider, newExpiry);
    }

    /// Returns deposit - claimed to the client and closes the channel. Anyone may call it
    /// once the channel has expired; the provider may call it at any time (early release).
    function refund(bytes32 channelId) external nonReentrant {
        Channel storage c = _live(channelId);
        if (msg.sender != c.provider && block.timestamp < c.expiry) {
            revert NotExpired(c.expiry, block.timestamp);
        }
        uint256 rest = uint256(c.deposit) - c.claimed;
        c.closed = true; // no claim, top-up or extension from now on
        address client = c.client;
        emit Refunded(channelId, client, c.provider, rest);
        _send(client, rest);
    }

    // ---------------------------------------------------------------- provider side

    /// Redeems a voucher: pays the provider `amount - claimed`. Anyone may submit it.
    /// Reverts with NothingToClaim when `amount` is not above what was already paid, so a
    /// replayed or stale voucher never pays twice.
    function claim(bytes32 channelId, uint256 amount, bytes calldata signature) external nonReentrant {
        (address provider, uint256 paid) = _settle(channelId, amount, signature, true);
        _send(provider, paid);
    }

    /// Redeems several vouchers in one transaction. Every voucher is checked like `claim`
    /// (a bad one reverts the whole batch), except that a voucher already redeemed pays 0
    /// instead of reverting, so one front-run entry cannot sink the batch. Consecutive
    /// entries for the same provider are paid in one transfer. Returns the total paid.
    function claimMany(bytes32[] calldata channelIds, uint256[] calldata amounts, bytes[] calldata signatures)
        external nonReentrant returns (uint256 total)
    {
        uint256 n = channelIds.length;
        if (amounts.length != n || signatures.length != n) revert LengthMismatch();
        address pending;
        uint256 owed;
        for (uint256 i = 0; i < n; ++i) {
            (address provider, uint256 paid) = _settle(channelIds[i], amounts[i], signatures[i], false);
            if (provider != pending) {
                if (owed != 0) _send(pending, owed);
                pending = provider;
                owed = 0;
            }
            owed += paid;
            total += paid;
        }
        if (owed != 0) _send(pending, owed);
    }

    // ---------------------------------------------------------------- views

    function getChannel(bytes32 channelId) external view returns (Channel memory) {
        return _channels[channelId];
    }

    /// The id the next `open` by `client` for `provider` will return.
    function nextChannelId(address client, address provider) external view returns (bytes32) {
        return keccak256(abi.encode(client, provider, nonces[client]));
    }

    function domainSeparator() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomain : _buildDomain();
    }

    /// The EIP-712 digest a voucher's signer signs.
    function voucherDigest(bytes32 channelId, uint256 amount) public view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, amount));
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
    }

    // ---------------------------------------------------------------- internals

    function _buildDomain() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _live(bytes32 channelId) private view returns (Channel storage c) {
        c = _channels[channelId];
        if (c.client == address(0)) revert UnknownChannel(channelId);
        if (c.closed) revert ChannelClosed(channelId);
    }

    /// Verifies one voucher and books it. Returns the provider and what it is owed now
    /// (0 when the voucher is not above the amount already claimed, or a NothingToClaim
    /// revert when `strict`). No transfer.
    function _settle(bytes32 channelId, uint256 amount, bytes calldata signature, bool strict)
        private returns (address provider, uint256 paid)
    {
        Channel storage c = _live(channelId);
        uint256 deposit = c.deposit;
        if (amount > deposit) revert AmountExceedsDeposit(amount, deposit);
        address signer = _recover(voucherDigest(channelId, amount), signature);
        if (signer != c.signer) revert WrongSigner(signer, c.signer);
        provider = c.provider;
        uint256 claimed = c.claimed;
        if (amount <= claimed) {
            if (strict) revert NothingToClaim(amount, claimed);
            return (provider, 0);
        }
        paid = amount - claimed;
        c.claimed = uint128(amount); // amount <= deposit <= uint128 max
        emit Claimed(channelId, c.client, provider, amount, paid);
    }

    /// ecrecover for a 65-byte r ‖ s ‖ v signature; rejects malleable and malformed ones.
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

    function _send(address to, uint256 value) private {
        if (value == 0) return;
        (bool ok,) = to.call{value: value}("");
        if (!ok) revert TransferFailed(to, value);
    }
}
