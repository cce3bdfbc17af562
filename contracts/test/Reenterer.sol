// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// Test helper for tests/contracts/run, never deployed for real and not embedded in the
/// binary (scripts/build-contracts compiles contracts/*.sol only). Used as a channel's
/// provider or client: when it receives coin it makes one call back into the Escrow
/// (`payload`, set with `arm`) and records how that call ended, without reverting itself.
contract Reenterer {
    address public immutable escrow;
    bytes public payload;  // calldata sent to the Escrow from receive()
    bool public tried;     // receive() made its call
    bool public innerOk;   // the call succeeded
    bytes4 public innerErr; // the call's revert selector, if any

    constructor(address escrow_) {
        escrow = escrow_;
    }

    function arm(bytes calldata p) external {
        payload = p;
        tried = false;
    }

    /// Lets the helper act as a client: opens a channel funded with msg.value.
    function openChannel(address provider, address signer, uint64 expiry) external payable returns (bytes32) {
        (bool ok, bytes memory ret) = escrow.call{value: msg.value}(
            abi.encodeWithSignature("open(address,address,uint64)", provider, signer, expiry));
        require(ok, "open failed");
        return abi.decode(ret, (bytes32));
    }

    receive() external payable {
        if (payload.length == 0 || tried) return;
        tried = true;
        (bool ok, bytes memory ret) = escrow.call(payload);
        innerOk = ok;
        if (ret.length >= 4) innerErr = bytes4(ret);
    }
}
