/*
 * A stand-in libnvidia-ml.so.1 (NVML) for tests and the cluster twin.
 *
 * It exports the NVML symbols _utils/nvml.py calls (and cuDriverGetVersion,
 * so one build also stands in for libcuda.so.1), with the ABI of NVIDIA's
 * nvml.h (R580): return codes, nvmlPciInfo_t, nvmlMemory_t, the _v2/_v3
 * entry points. Its answers come from a text file read at every nvmlInit
 * (so a long-running process sees a driver loaded or unloaded later):
 * $K8SNVIDIA_FAKE_NVML, else $K8STWIN_NODE_DIR/nvml/state. No file: nvmlInit
 * fails with NVML_ERROR_DRIVER_NOT_LOADED, as the real library does when
 * the nvidia kernel module is absent.
 *
 * File format, one record a line (k8stwin/fakenvml.py writes it):
 *   init RC                 nvmlInit_v2 returns RC (default 0)
 *   driver 580.95.05        nvmlSystemGetDriverVersion
 *   cuda 13000              nvmlSystemGetCudaDriverVersion, cuDriverGetVersion
 *   fail FUNC INDEX RC      FUNC returns RC (for GPU INDEX; -1: every call)
 *   gpu BUSID PCIDEVID UUID MEMBYTES CCMAJOR CCMINOR MIG NAME...
 *                           MIG: -1 not supported, 0 disabled, 1 enabled
 * Build with -DOMIT_<function> to leave a symbol out (an old driver).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_UNKNOWN 999

#define MAX_GPUS 64
#define MAX_FAILS 64

typedef struct {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

struct gpu {
    char bus_id[32];
    unsigned int pci_device_id;
    char uuid[96];
    unsigned long long memory;
    int cc_major, cc_minor, mig;
    char name[96];
};

struct fail {
    char func[64];
    int index;
    int rc;
};

static struct gpu gpus[MAX_GPUS];
static unsigned int gpu_count;
static struct fail fails[MAX_FAILS];
static int fail_count;
static char driver[80];
static int cuda_version;
static int init_rc;
static int refs;

static const char *state_path(char *buf, size_t len) {
    const char *env = getenv("K8SNVIDIA_FAKE_NVML");
    if (env && *env)
        return env;
    env = getenv("K8STWIN_NODE_DIR");
    if (!env || !*env)
        return NULL;
    snprintf(buf, len, "%s/nvml/state", env);
    return buf;
}

/* read the state file; 0, or NVML_ERROR_DRIVER_NOT_LOADED when it is missing */
static int load_state(void) {
    char path[4096], line[512];
    const char *p = state_path(path, sizeof path);
    FILE *fh = p ? fopen(p, "r") : NULL;
    gpu_count = 0;
    fail_count = 0;
    driver[0] = 0;
    cuda_version = 0;
    init_rc = 0;
    if (!fh)
        return NVML_ERROR_DRIVER_NOT_LOADED;
    while (fgets(line, sizeof line, fh)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!strncmp(line, "init ", 5)) {
            init_rc = atoi(line + 5);
        } else if (!strncmp(line, "driver ", 7)) {
            snprintf(driver, sizeof driver, "%.79s", line + 7);
        } else if (!strncmp(line, "cuda ", 5)) {
            cuda_version = atoi(line + 5);
        } else if (!strncmp(line, "fail ", 5) && fail_count < MAX_FAILS) {
            struct fail *f = &fails[fail_count];
            if (sscanf(line + 5, "%63s %d %d", f->func, &f->index, &f->rc) == 3)
                fail_count++;
        } else if (!strncmp(line, "gpu ", 4) && gpu_count < MAX_GPUS) {
            struct gpu *g = &gpus[gpu_count];
            int used = 0;
            memset(g, 0, sizeof *g);
            if (sscanf(line + 4, "%31s %x %95s %llu %d %d %d %n", g->bus_id, &g->pci_device_id, g->uuid, &g->memory,
                       &g->cc_major, &g->cc_minor, &g->mig, &used) >= 7) {
                snprintf(g->name, sizeof g->name, "%s", line + 4 + used);
                gpu_count++;
            }
        }
    }
    fclose(fh);
    return 0;
}

static int failing(const char *func, int index) {
    for (int i = 0; i < fail_count; i++)
        if (!strcmp(fails[i].func, func) && (fails[i].index == -1 || fails[i].index == index))
            return fails[i].rc;
    return 0;
}

static int gpu_index(void *handle) {
    struct gpu *g = handle;
    if (!g || g < gpus || g >= gpus + gpu_count)
        return -1;
    return (int)(g - gpus);
}

#define NEED_INIT() do { if (refs <= 0) return NVML_ERROR_UNINITIALIZED; } while (0)
#define CHECK(name, index) do { int rc_ = failing(name, index); if (rc_) return rc_; } while (0)
#define DEVICE(name)                                                   \
    NEED_INIT();                                                       \
    int idx = gpu_index(device);                                       \
    if (idx < 0)                                                       \
        return NVML_ERROR_INVALID_ARGUMENT;                            \
    CHECK(name, idx);                                                  \
    struct gpu *g = &gpus[idx]

static int put(char *buf, unsigned int len, const char *text) {
    if (!buf)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > len)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(buf, text);
    return NVML_SUCCESS;
}

#ifndef OMIT_nvmlInit_v2
int nvmlInit_v2(void) {
    int rc = load_state();
    if (rc)
        return rc;
    if (init_rc)
        return init_rc;
    refs++;
    return NVML_SUCCESS;
}
int nvmlInit(void) { return nvmlInit_v2(); }
#endif

int nvmlShutdown(void) {
    NEED_INIT();
    refs--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(int rc) {
    switch (rc) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 7: return "Insufficient Size";
    case 9: return "Driver Not Loaded";
    case 12: return "NVML Shared Library Not Found";
    case 15: return "GPU is lost";
    case 18: return "RM has detected an NVML/RM version mismatch.";
    default: return "Unknown Error";
    }
}

#ifndef OMIT_nvmlSystemGetDriverVersion
int nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    NEED_INIT();
    CHECK("nvmlSystemGetDriverVersion", -1);
    return put(version, length, driver);
}
#endif

#ifndef OMIT_nvmlSystemGetCudaDriverVersion
int nvmlSystemGetCudaDriverVersion(int *version) {
    NEED_INIT();
    CHECK("nvmlSystemGetCudaDriverVersion", -1);
    if (!version)
        return NVML_ERROR_INVALID_ARGUMENT;
    *version = cuda_version;
    return NVML_SUCCESS;
}
int nvmlSystemGetCudaDriverVersion_v2(int *version) { return nvmlSystemGetCudaDriverVersion(version); }
#endif

#ifndef OMIT_nvmlDeviceGetCount_v2
int nvmlDeviceGetCount_v2(unsigned int *count) {
    NEED_INIT();
    CHECK("nvmlDeviceGetCount_v2", -1);
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = gpu_count;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetHandleByIndex_v2
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
    NEED_INIT();
    if (!device || index >= gpu_count)
        return NVML_ERROR_INVALID_ARGUMENT;
    CHECK("nvmlDeviceGetHandleByIndex_v2", (int)index);
    *device = &gpus[index];
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetPciInfo_v3
int nvmlDeviceGetPciInfo_v3(void *device, nvmlPciInfo_t *pci) {
    DEVICE("nvmlDeviceGetPciInfo_v3");
    unsigned int dom = 0, bus = 0, dev = 0, fn = 0;
    if (!pci)
        return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof *pci);
    sscanf(g->bus_id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn);
    pci->domain = dom;
    pci->bus = bus;
    pci->device = dev;
    pci->pciDeviceId = g->pci_device_id;
    snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.%X", dom, bus, dev, fn);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.%X", dom & 0xffff, bus, dev, fn);
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetName
int nvmlDeviceGetName(void *device, char *name, unsigned int length) {
    DEVICE("nvmlDeviceGetName");
    return put(name, length, g->name);
}
#endif

#ifndef OMIT_nvmlDeviceGetUUID
int nvmlDeviceGetUUID(void *device, char *uuid, unsigned int length) {
    DEVICE("nvmlDeviceGetUUID");
    return put(uuid, length, g->uuid);
}
#endif

#ifndef OMIT_nvmlDeviceGetMemoryInfo
int nvmlDeviceGetMemoryInfo(void *device, nvmlMemory_t *memory) {
    DEVICE("nvmlDeviceGetMemoryInfo");
    if (!memory)
        return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = g->memory;
    memory->used = 0;
    memory->free = g->memory;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetCudaComputeCapability
int nvmlDeviceGetCudaComputeCapability(void *device, int *major, int *minor) {
    DEVICE("nvmlDeviceGetCudaComputeCapability");
    if (!major || !minor)
        return NVML_ERROR_INVALID_ARGUMENT;
    *major = g->cc_major;
    *minor = g->cc_minor;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetMigMode
int nvmlDeviceGetMigMode(void *device, unsigned int *current, unsigned int *pending) {
    DEVICE("nvmlDeviceGetMigMode");
    if (!current || !pending)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (g->mig < 0)
        return NVML_ERROR_NOT_SUPPORTED;
    *current = (unsigned int)g->mig;
    *pending = (unsigned int)g->mig;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_cuDriverGetVersion
/* libcuda.so.1's entry point (CUDA_SUCCESS 0, CUDA_ERROR_INVALID_VALUE 1);
 * it answers without cuInit, from the same file */
int cuDriverGetVersion(int *version) {
    if (!version)
        return 1;
    if ((refs <= 0 && load_state()) || cuda_version <= 0)
        return 1;
    *version = cuda_version;
    return 0;
}
#endif
