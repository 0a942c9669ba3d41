/* FRR's daemons ask libcap for a fixed set of capabilities at start-up (zebra and bgpd include CAP_SYS_ADMIN, for
 * network-namespace VRFs) and exit when the kernel refuses any of them. A lab node gets NET_ADMIN and NET_RAW,
 * never SYS_ADMIN (harness/lab.py): this shim, preloaded, drops from every cap_set_proc() call the capabilities
 * outside the container's bounding set, so the daemons run with what they may have. VRFs as namespaces are
 * then unavailable, which the cases never use. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/prctl.h>

typedef void *cap_t;
typedef int cap_value_t;

int cap_set_proc(cap_t caps)
{
    int (*real)(cap_t) = (int (*)(cap_t))dlsym(RTLD_NEXT, "cap_set_proc");
    int (*set_flag)(cap_t, int, int, const cap_value_t *, int) =
        (int (*)(cap_t, int, int, const cap_value_t *, int))dlsym(RTLD_NEXT, "cap_set_flag");
    for (cap_value_t cap = 0; cap < 64 && set_flag; cap++) {
        int held = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (held == 0) /* -1: no such capability on this kernel, nothing to drop */
            for (int flag = 0; flag < 3; flag++) /* effective, permitted, inheritable */
                set_flag(caps, flag, 1, &cap, 0 /* CAP_CLEAR */);
    }
    return real(caps);
}
