"""Village channels: encode-once fan-out, HTTP mounts, HLS, WebRTC live in and out."""
