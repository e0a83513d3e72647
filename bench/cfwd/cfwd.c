/*
 * cfwd: "the C ceiling" for the e2e benchmark. A TAP-to-TAP forwarder with nothing in it:
 * it creates N TAP devices (IFF_TAP|IFF_NO_PI, optionally IFF_VNET_HDR), and every frame
 * read from one is written unchanged to all the others (two TAPs: a wire; more: a hub),
 * with read()/write() in a ppoll() loop. No MAC learning, no parsing, no batching syscalls:
 * what any copy-based userspace forwarder pays at least, per frame.
 *
 *   cfwd [--vnet-hdr on|off] [--budget N] TAP TAP [TAP...]
 *
 * --vnet-hdr on (default): TUNSETVNETHDRSZ 10 and TUNSETOFFLOAD CSUM|TSO4|TSO6|TSO_ECN, so
 * the kernel hands over 64 KiB GSO frames with partial checksums; the 10-byte virtio header
 * goes through unchanged, so the receiving TAP segments / checksums as the sender asked.
 * --vnet-hdr off: plain frames of at most MTU, checksummed and segmented by the kernel.
 *
 * The TAPs live as long as this process holds their fds; the caller moves them into other
 * namespaces (`ip link set dev X netns NS`) after the "ready" line. A name that already
 * exists is refused (never attach to a device this process did not create). Exits on
 * SIGTERM/SIGINT (or when its parent dies), printing one line of JSON counters:
 *   cfwd pid=123 vnet_hdr=on taps=a,b ready
 *   cfwd stats {"a":{"rx_frames":...},...}
 * Build: cc -O2 -o cfwd cfwd.c (libc and linux headers only).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#define MAX_TAPS 8
#define BUF_SIZE (1 << 17) /* virtio header + a 64 KiB GSO frame, with room to spare */

struct tap {
	const char *name;
	int fd;
	unsigned long long rx_frames, rx_bytes, rx_errors;
	unsigned long long tx_frames, tx_bytes, tx_errors, tx_short;
	int last_tx_errno, last_rx_errno;
};

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig) { stop_sig = sig; }

static void usage(void)
{
	fprintf(stderr, "usage: cfwd [--vnet-hdr on|off] [--budget N] TAP TAP [TAP...] (2..%d TAPs)\n", MAX_TAPS);
	exit(2);
}

static int open_tap(const char *name, int vnet)
{
	struct ifreq ifr;
	int fd;

	if (strlen(name) >= IFNAMSIZ) {
		fprintf(stderr, "cfwd: TAP name too long: %s\n", name);
		return -1;
	}
	if (if_nametoindex(name) != 0) {
		fprintf(stderr, "cfwd: a device named %s exists already; not touching it\n", name);
		return -1;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cfwd: open /dev/net/tun: %s\n", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "cfwd: TUNSETIFF %s: %s\n", name, strerror(errno));
		close(fd);
		return -1;
	}
	if (vnet) {
		int hdrsz = sizeof(struct virtio_net_hdr); /* 10 */
		unsigned int off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
		if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0 || ioctl(fd, TUNSETOFFLOAD, off) < 0) {
			fprintf(stderr, "cfwd: TUNSETVNETHDRSZ/TUNSETOFFLOAD %s: %s\n", name, strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

static void print_stats(const struct tap *t, int n)
{
	printf("cfwd stats {");
	for (int i = 0; i < n; i++)
		printf("%s\"%s\":{\"rx_frames\":%llu,\"rx_bytes\":%llu,\"rx_errors\":%llu,\"last_rx_errno\":%d,"
		       "\"tx_frames\":%llu,\"tx_bytes\":%llu,\"tx_errors\":%llu,\"tx_short\":%llu,\"last_tx_errno\":%d}",
		       i ? "," : "", t[i].name, t[i].rx_frames, t[i].rx_bytes, t[i].rx_errors, t[i].last_rx_errno,
		       t[i].tx_frames, t[i].tx_bytes, t[i].tx_errors, t[i].tx_short, t[i].last_tx_errno);
	printf("}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct tap taps[MAX_TAPS];
	struct pollfd pfd[MAX_TAPS];
	int ntaps = 0, vnet = 1, budget = 64, rc = 0;
	static unsigned char buf[BUF_SIZE];
	sigset_t block, waitmask;
	struct sigaction sa;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--vnet-hdr") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "on") == 0) vnet = 1;
			else if (strcmp(argv[i], "off") == 0) vnet = 0;
			else usage();
		} else if (strcmp(argv[i], "--budget") == 0 && i + 1 < argc) {
			budget = atoi(argv[++i]);
			if (budget < 1 || budget > 4096) usage();
		} else if (argv[i][0] == '-' || ntaps == MAX_TAPS) {
			usage();
		} else {
			memset(&taps[ntaps], 0, sizeof taps[ntaps]);
			taps[ntaps++].name = argv[i];
		}
	}
	if (ntaps < 2) usage();

	/* Signals are blocked except inside ppoll(), so a SIGTERM is never missed between checks. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* The bench (our parent) dying must not leave this process and its TAPs behind. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1) return 1;

	for (int i = 0; i < ntaps; i++) {
		taps[i].fd = open_tap(taps[i].name, vnet);
		if (taps[i].fd < 0) return 1; /* exiting closes (and so removes) the TAPs made so far */
		pfd[i].fd = taps[i].fd;
		pfd[i].events = POLLIN;
	}
	printf("cfwd pid=%d vnet_hdr=%s taps=", (int)getpid(), vnet ? "on" : "off");
	for (int i = 0; i < ntaps; i++) printf("%s%s", i ? "," : "", taps[i].name);
	printf(" ready\n");
	fflush(stdout);

	while (!stop_sig) {
		int n = ppoll(pfd, ntaps, NULL, &waitmask);
		if (n < 0) {
			if (errno == EINTR) continue;
			fprintf(stderr, "cfwd: ppoll: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		for (int i = 0; i < ntaps && !stop_sig; i++) {
			if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
				fprintf(stderr, "cfwd: %s: poll revents 0x%x (device gone?)\n", taps[i].name, pfd[i].revents);
				stop_sig = -1;
				rc = 1;
				break;
			}
			if (!(pfd[i].revents & POLLIN)) continue;
			/* Up to `budget` frames from this TAP, then the next one gets its turn. */
			for (int b = 0; b < budget; b++) {
				ssize_t len = read(taps[i].fd, buf, sizeof buf);
				if (len < 0) {
					if (errno != EAGAIN && errno != EINTR) {
						taps[i].rx_errors++;
						taps[i].last_rx_errno = errno;
					}
					break;
				}
				taps[i].rx_frames++;
				taps[i].rx_bytes += (unsigned long long)len;
				for (int j = 0; j < ntaps; j++) {
					if (j == i) continue;
					ssize_t w = write(taps[j].fd, buf, (size_t)len);
					if (w == len) {
						taps[j].tx_frames++;
						taps[j].tx_bytes += (unsigned long long)len;
					} else if (w < 0) {
						taps[j].tx_errors++; /* EIO while the other side is still down */
						taps[j].last_tx_errno = errno;
					} else {
						taps[j].tx_short++;
					}
				}
			}
		}
	}
	print_stats(taps, ntaps);
	for (int i = 0; i < ntaps; i++) close(taps[i].fd);
	return rc;
}
