/* The Vulkan backend's entry points outside its folder: device discovery for
 * the planner. The loader (libvulkan.so.1) is opened at run time: no loader,
 * no driver or no device means no Vulkan devices, never an error.
 *
 * A device of type discrete or integrated GPU counts as a GPU for ALL and
 * CPU_AND_GPU; its budget is the device-local heap minus a margin, capped by
 * gpu_memory_limit. A CPU-type device (Mesa's lavapipe) is listed but used
 * only when the environment has QEMBED_VULKAN_SOFTWARE=1. Devices are named
 * "vulkanN (<device name>)". */
#ifndef QE_VK_BACKEND_H
#define QE_VK_BACKEND_H

#include "common/log.h"
#include "plan/plan.h"

/* Appends the Vulkan devices to `out`; returns how many it found. */
int qe_vk_discover(const qembed_model_params *params, const qe_logger *lg, qe_devices *out);

/* What a Vulkan segment's device handle (the model-level state seg_load
 * returned) has done so far, each counted up only: device memory allocated
 * (weights, every context's workspace, staging) in bytes and calls, and
 * descriptor sets written. For the tests that hold the device to the plan and
 * the hot path to no allocation and no re-binding. All 0 for a NULL segment. */
typedef struct qe_vk_stats {
    uint64_t bytes, allocs, desc_writes;
} qe_vk_stats;
void qe_vk_seg_stats(const void *seg, qe_vk_stats *out);

#endif
