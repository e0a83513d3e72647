/*
 * Frame memory layout shared by the native addon and the JS data plane.
 *
 * All frames live in one preallocated ArrayBuffer (the "arena"). The arena is cut into
 * fixed-size slots. Each slot starts with a 10-byte virtio_net_hdr (struct virtio_net_hdr,
 * the same bytes IFF_VNET_HDR TAPs and PACKET_VNET_HDR sockets use); the Ethernet frame
 * starts at slot + VNET_HDR_LEN. Ports opened without a vnet header still use this layout:
 * the native side zeroes the header on receive and skips it on transmit, so JS always sees
 * the same shape. Offsets passed across the native boundary are *slot* offsets (pointing at
 * the vnet header); lengths are *frame* lengths (without the vnet header).
 *
 * An RX ring is a run of consecutive slots owned by one port. The native reader fills slots
 * 0..n-1 of the ring, writes frame lengths into the ring's Int32Array and calls JS once per
 * batch; the slots are reused only after that call returns. Frames that must outlive the
 * batch (delay queues, ARP-pending queues, generated replies) are copied into pool slots.
 */

/** Bytes of struct virtio_net_hdr at the start of every slot. */
export const VNET_HDR_LEN = 10;
/** Slot size: a 64 KiB GSO frame plus the vnet header, rounded to a cache-line multiple. */
export const SLOT_SIZE = 65536 + 128;
/** Largest frame (without the vnet header) a slot can hold. */
export const MAX_FRAME_LEN = SLOT_SIZE - VNET_HDR_LEN;

/* struct virtio_net_hdr field offsets (relative to the slot start). */
export const VNET_FLAGS = 0; // u8
export const VNET_GSO_TYPE = 1; // u8
export const VNET_HDR_LEN_FIELD = 2; // le16: length of headers to copy into each segment
export const VNET_GSO_SIZE = 4; // le16: segment payload size
export const VNET_CSUM_START = 6; // le16: offset from frame start where checksumming starts
export const VNET_CSUM_OFFSET = 8; // le16: offset after csum_start where the checksum goes

export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_ECN = 0x80;
