#ifndef QE_VK_NO_HEADERS
/* One opened Vulkan device: logical device, queue, the compute pipelines
 * built from the SPIR-V embedded at build time, a staging buffer, one
 * command buffer and a descriptor pool. Buffers, copies, recording and
 * submission. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/vulkan/vk_internal.h"
#include "backend/vulkan/vk_loader.h"
#include "backend/vulkan/vk_spv.h"

#define STAGING_BYTES ((uint64_t)16 << 20)
#define DESC_SETS 4096
#define MAX_BINDINGS 5
#define DCACHE_SLOTS (2 * DESC_SETS) /* a power of two; at most half full */

/* One cached descriptor set: pipeline and buffer handles -> set. */
typedef struct qe_vk_dset {
    int pipe; /* -1: empty slot */
    VkBuffer bufs[MAX_BINDINGS];
    VkDescriptorSet set;
} qe_vk_dset;

int qe_vk_list(qe_vk_info *out, int max) {
    VkInstance inst;
    const qe_vk_fns *f = qe_vk_load(&inst, NULL);
    if (!f) return 0;
    uint32_t n = 0;
    if (f->vkEnumeratePhysicalDevices(inst, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkPhysicalDevice pd[16];
    if (n > 16) n = 16;
    if (f->vkEnumeratePhysicalDevices(inst, &n, pd) < 0) return 0;
    int k = 0;
    for (uint32_t i = 0; i < n && k < max; i++, k++) {
        qe_vk_info *o = &out[k];
        memset(o, 0, sizeof *o);
        VkPhysicalDeviceProperties p;
        f->vkGetPhysicalDeviceProperties(pd[i], &p);
        snprintf(o->name, sizeof o->name, "%s", p.deviceName);
        o->type = p.deviceType;
        o->max_storage_range = p.limits.maxStorageBufferRange;
        o->max_shared = p.limits.maxComputeSharedMemorySize;
        for (int j = 0; j < 3; j++) o->max_groups[j] = p.limits.maxComputeWorkGroupCount[j];
        if (f->vkGetPhysicalDeviceProperties2 && p.apiVersion >= VK_API_VERSION_1_1) {
            VkPhysicalDeviceSubgroupProperties sg = {
                .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
            VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                              .pNext = &sg};
            f->vkGetPhysicalDeviceProperties2(pd[i], &p2);
            o->subgroup = sg.subgroupSize;
        }
        VkPhysicalDeviceMemoryProperties mp;
        f->vkGetPhysicalDeviceMemoryProperties(pd[i], &mp);
        for (uint32_t h = 0; h < mp.memoryHeapCount; h++)
            if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
                mp.memoryHeaps[h].size > o->local_heap)
                o->local_heap = mp.memoryHeaps[h].size;
    }
    return k;
}

static const qe_vk_fns *F(void) {
    return qe_vk_load(NULL, NULL);
}

/* The embedded shaders and their binding counts, in qe_vk_pipe order. */
static const struct {
    const unsigned char *code;
    size_t size;
    int n_bind;
    uint32_t push;
    const char *name;
} shaders[QE_VKP_COUNT] = {
    {qe_spv_matmul_f32, sizeof qe_spv_matmul_f32, 3, 32, "matmul_f32"},
    {qe_spv_matmul_f16, sizeof qe_spv_matmul_f16, 3, 32, "matmul_f16"},
    {qe_spv_matmul_bf16, sizeof qe_spv_matmul_bf16, 3, 32, "matmul_bf16"},
    {qe_spv_rmsnorm, sizeof qe_spv_rmsnorm, 3, 32, "rmsnorm"},
    {qe_spv_rope, sizeof qe_spv_rope, 5, 16, "rope"},
    {qe_spv_swiglu, sizeof qe_spv_swiglu, 2, 4, "swiglu"},
    {qe_spv_add, sizeof qe_spv_add, 2, 4, "add"},
    {qe_spv_attention, sizeof qe_spv_attention, 4, 20, "attention"},
};

static qembed_status vkfail(qembed_error *err, VkResult r, const char *what) {
    return qe_error(err,
                    r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY
                        ? QEMBED_ERR_OUT_OF_MEMORY
                        : QEMBED_ERR_INTERNAL,
                    "vulkan: %s failed (VkResult %d)", what, (int)r);
}

#define VK_TRY(call, what)                                  \
    do {                                                    \
        VkResult r_ = (call);                               \
        if (r_ != VK_SUCCESS) return vkfail(err, r_, what); \
    } while (0)

static int find_memory(qe_vk *vk, uint32_t type_bits, VkMemoryPropertyFlags want,
                       VkMemoryPropertyFlags prefer) {
    VkPhysicalDeviceMemoryProperties mp;
    F()->vkGetPhysicalDeviceMemoryProperties(vk->phys, &mp);
    int any = -1;
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++) {
        if (!(type_bits & (1u << i))) continue;
        VkMemoryPropertyFlags fl = mp.memoryTypes[i].propertyFlags;
        if ((fl & want) != want) continue;
        if ((fl & prefer) == prefer) return (int)i;
        if (any < 0) any = (int)i;
    }
    return any;
}

static qembed_status buf_create(qe_vk *vk, uint64_t bytes, int host, qe_vk_buf *b, qembed_error *err) {
    const qe_vk_fns *f = F();
    memset(b, 0, sizeof *b);
    if (bytes == 0) bytes = 4;
    bytes = (bytes + 3) & ~(uint64_t)3;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = bytes,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VK_TRY(f->vkCreateBuffer(vk->dev, &bi, NULL, &b->buf), "vkCreateBuffer");
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(vk->dev, b->buf, &req);
    int type = host ? find_memory(vk, req.memoryTypeBits,
                                  VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                  VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                    : find_memory(vk, req.memoryTypeBits, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (type < 0) {
        f->vkDestroyBuffer(vk->dev, b->buf, NULL);
        b->buf = VK_NULL_HANDLE;
        QE_FAIL(err, QEMBED_ERR_INTERNAL, "vulkan: no suitable memory type for a buffer");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)type};
    VkResult r = f->vkAllocateMemory(vk->dev, &ai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        f->vkDestroyBuffer(vk->dev, b->buf, NULL);
        b->buf = VK_NULL_HANDLE;
        return qe_error(err, QEMBED_ERR_OUT_OF_MEMORY,
                        "vulkan: cannot allocate %llu bytes of device memory on %s (VkResult %d)",
                        (unsigned long long)req.size, vk->info.name, (int)r);
    }
    VK_TRY(f->vkBindBufferMemory(vk->dev, b->buf, b->mem, 0), "vkBindBufferMemory");
    b->size = bytes;
    vk->allocated += req.size;
    vk->n_allocs++;
    return QEMBED_OK;
}

qembed_status qe_vk_buf_create(qe_vk *vk, uint64_t bytes, qe_vk_buf *b, qembed_error *err) {
    return buf_create(vk, bytes, 0, b, err);
}

static void dcache_clear(qe_vk *vk);

void qe_vk_buf_free(qe_vk *vk, qe_vk_buf *b) {
    if (!vk || !b) return;
    if (b->buf) dcache_clear(vk); /* sets naming it are stale; the handle may come back */
    if (b->buf) F()->vkDestroyBuffer(vk->dev, b->buf, NULL);
    if (b->mem) F()->vkFreeMemory(vk->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

static qembed_status build_pipelines(qe_vk *vk, qembed_error *err) {
#ifdef QE_VK_NO_SHADERS
    QE_FAIL(err, QEMBED_ERR_INTERNAL,
            "vulkan: this build has no shaders (glslc was not found when it was built)");
#endif
    const qe_vk_fns *f = F();
    for (int p = 0; p < QE_VKP_COUNT; p++) {
        VkDescriptorSetLayoutBinding bind[MAX_BINDINGS];
        for (int i = 0; i < shaders[p].n_bind; i++)
            bind[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                                     .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                                     .descriptorCount = 1,
                                                     .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
        VkDescriptorSetLayoutCreateInfo dl = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                              .bindingCount = (uint32_t)shaders[p].n_bind,
                                              .pBindings = bind};
        VK_TRY(f->vkCreateDescriptorSetLayout(vk->dev, &dl, NULL, &vk->dsl[p]),
               "vkCreateDescriptorSetLayout");
        VkPushConstantRange pr = {
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = shaders[p].push};
        VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                         .setLayoutCount = 1,
                                         .pSetLayouts = &vk->dsl[p],
                                         .pushConstantRangeCount = 1,
                                         .pPushConstantRanges = &pr};
        VK_TRY(f->vkCreatePipelineLayout(vk->dev, &pl, NULL, &vk->layout[p]), "vkCreatePipelineLayout");
        VkShaderModuleCreateInfo sm = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = shaders[p].size,
                                       .pCode = (const uint32_t *)(const void *)shaders[p].code};
        VkShaderModule mod;
        VkResult r = f->vkCreateShaderModule(vk->dev, &sm, NULL, &mod);
        if (r != VK_SUCCESS)
            return qe_error(err, QEMBED_ERR_INTERNAL, "vulkan: shader %s does not load on %s (VkResult %d)",
                            shaders[p].name, vk->info.name, (int)r);
        VkComputePipelineCreateInfo cp = {
            .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                      .module = mod,
                      .pName = "main"},
            .layout = vk->layout[p]};
        r = f->vkCreateComputePipelines(vk->dev, VK_NULL_HANDLE, 1, &cp, NULL, &vk->pipe[p]);
        f->vkDestroyShaderModule(vk->dev, mod, NULL);
        if (r != VK_SUCCESS)
            return qe_error(err, QEMBED_ERR_INTERNAL, "vulkan: shader %s does not build on %s (VkResult %d)",
                            shaders[p].name, vk->info.name, (int)r);
        vk->n_bind[p] = shaders[p].n_bind;
    }
    return QEMBED_OK;
}

static qembed_status open_device(qe_vk *vk, int index, qembed_error *err) {
    VkInstance inst;
    const char *why = NULL;
    const qe_vk_fns *f = qe_vk_load(&inst, &why);
    QE_FAIL_IF(!f, err, QEMBED_ERR_INVALID_ARGUMENT, "vulkan: %s", why);
    uint32_t n = 0;
    VkPhysicalDevice pd[16];
    if (f->vkEnumeratePhysicalDevices(inst, &n, NULL) != VK_SUCCESS) n = 0;
    if (n > 16) n = 16;
    if (n && f->vkEnumeratePhysicalDevices(inst, &n, pd) < 0) n = 0;
    QE_FAIL_IF(index < 0 || (uint32_t)index >= n, err, QEMBED_ERR_INVALID_ARGUMENT,
               "vulkan: no device vulkan%d (%u found)", index, n);
    vk->phys = pd[index];
    qe_vk_info infos[16];
    int ni = qe_vk_list(infos, 16);
    if (index < ni) vk->info = infos[index];

    uint32_t nq = 0;
    f->vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, NULL);
    VkQueueFamilyProperties qf[16];
    if (nq > 16) nq = 16;
    f->vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, qf);
    int fam = -1;
    for (uint32_t i = 0; i < nq && fam < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) fam = (int)i;
    QE_FAIL_IF(fam < 0, err, QEMBED_ERR_INVALID_ARGUMENT, "vulkan: %s has no compute queue", vk->info.name);
    vk->queue_family = (uint32_t)fam;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = vk->queue_family,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo di = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qi};
    VK_TRY(f->vkCreateDevice(vk->phys, &di, NULL, &vk->dev), "vkCreateDevice");
    f->vkGetDeviceQueue(vk->dev, vk->queue_family, 0, &vk->queue);

    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = vk->queue_family};
    VK_TRY(f->vkCreateCommandPool(vk->dev, &cpi, NULL, &vk->cmd_pool), "vkCreateCommandPool");
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = vk->cmd_pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    VK_TRY(f->vkAllocateCommandBuffers(vk->dev, &cai, &vk->cmd), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_TRY(f->vkCreateFence(vk->dev, &fi, NULL, &vk->fence), "vkCreateFence");
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                               .descriptorCount = DESC_SETS * MAX_BINDINGS};
    VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = DESC_SETS,
                                      .poolSizeCount = 1,
                                      .pPoolSizes = &ps};
    VK_TRY(f->vkCreateDescriptorPool(vk->dev, &dpi, NULL, &vk->desc_pool), "vkCreateDescriptorPool");
    vk->desc_cap = DESC_SETS;
    vk->dcache = malloc(DCACHE_SLOTS * sizeof *vk->dcache);
    QE_FAIL_IF(!vk->dcache, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < DCACHE_SLOTS; i++) vk->dcache[i].pipe = -1;
    QE_TRY(build_pipelines(vk, err));
    QE_TRY(buf_create(vk, STAGING_BYTES, 1, &vk->staging, err));
    VK_TRY(f->vkMapMemory(vk->dev, vk->staging.mem, 0, VK_WHOLE_SIZE, 0, &vk->staging_map), "vkMapMemory");
    return QEMBED_OK;
}

qembed_status qe_vk_open(int index, qe_vk **out, qembed_error *err) {
    *out = NULL;
    qe_vk *vk = calloc(1, sizeof *vk);
    QE_FAIL_IF(!vk, err, QEMBED_ERR_OUT_OF_MEMORY, "out of memory");
    pthread_mutex_init(&vk->lock, NULL);
    qembed_status s = open_device(vk, index, err);
    if (s != QEMBED_OK) {
        qe_vk_close(vk);
        return s;
    }
    *out = vk;
    return QEMBED_OK;
}

void qe_vk_close(qe_vk *vk) {
    if (!vk) return;
    const qe_vk_fns *f = F();
    if (vk->dev) {
        f->vkDeviceWaitIdle(vk->dev);
        if (vk->staging_map) f->vkUnmapMemory(vk->dev, vk->staging.mem);
        qe_vk_buf_free(vk, &vk->staging);
        for (int p = 0; p < QE_VKP_COUNT; p++) {
            if (vk->pipe[p]) f->vkDestroyPipeline(vk->dev, vk->pipe[p], NULL);
            if (vk->layout[p]) f->vkDestroyPipelineLayout(vk->dev, vk->layout[p], NULL);
            if (vk->dsl[p]) f->vkDestroyDescriptorSetLayout(vk->dev, vk->dsl[p], NULL);
        }
        if (vk->desc_pool) f->vkDestroyDescriptorPool(vk->dev, vk->desc_pool, NULL);
        if (vk->fence) f->vkDestroyFence(vk->dev, vk->fence, NULL);
        if (vk->cmd_pool) f->vkDestroyCommandPool(vk->dev, vk->cmd_pool, NULL);
        f->vkDestroyDevice(vk->dev, NULL);
    }
    pthread_mutex_destroy(&vk->lock);
    free(vk->dcache);
    free(vk);
}

/* ---- recording ---- */

qembed_status qe_vk_begin(qe_vk *vk, qembed_error *err) {
    const qe_vk_fns *f = F();
    QE_FAIL_IF(vk->lost, err, QEMBED_ERR_INTERNAL, "vulkan: %s was lost earlier", vk->info.name);
    VK_TRY(f->vkResetCommandBuffer(vk->cmd, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_TRY(f->vkBeginCommandBuffer(vk->cmd, &bi), "vkBeginCommandBuffer");
    vk->recording = 1;
    return QEMBED_OK;
}

qembed_status qe_vk_submit(qe_vk *vk, qembed_error *err) {
    const qe_vk_fns *f = F();
    vk->recording = 0;
    VK_TRY(f->vkEndCommandBuffer(vk->cmd), "vkEndCommandBuffer");
    VK_TRY(f->vkResetFences(vk->dev, 1, &vk->fence), "vkResetFences");
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &vk->cmd};
    VkResult r = f->vkQueueSubmit(vk->queue, 1, &si, vk->fence);
    if (r == VK_SUCCESS) r = f->vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS) {
        vk->lost = 1; /* a lost device is never used again by this process */
        return qe_error(err, QEMBED_ERR_INTERNAL, "vulkan: %s: submission failed (VkResult %d%s)",
                        vk->info.name, (int)r, r == VK_ERROR_DEVICE_LOST ? ": device lost" : "");
    }
    return QEMBED_OK;
}

static void barrier(qe_vk *vk) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                           VK_ACCESS_HOST_READ_BIT};
    VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    F()->vkCmdPipelineBarrier(vk->cmd, st, st | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

/* Drops every cached descriptor set (the pool is reset). Not while a
 * recording that uses them is pending: callers are outside a recording or
 * have just submitted it. */
static void dcache_clear(qe_vk *vk) {
    if (!vk->dcache || !vk->desc_pool || vk->desc_used == 0) return;
    F()->vkResetDescriptorPool(vk->dev, vk->desc_pool, 0);
    vk->desc_used = 0;
    for (int i = 0; i < DCACHE_SLOTS; i++) vk->dcache[i].pipe = -1;
}

static uint32_t dcache_slot(int pipe, const qe_vk_buf *const *bufs, int n) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)pipe;
    for (int i = 0; i < n; i++) {
        uint64_t v = 0;
        memcpy(&v, &bufs[i]->buf, sizeof bufs[i]->buf < sizeof v ? sizeof bufs[i]->buf : sizeof v);
        h = (h ^ v) * 1099511628211ull;
        h ^= h >> 29;
    }
    return (uint32_t)h & (DCACHE_SLOTS - 1);
}

/* The descriptor set of `pipe` over `bufs`: cached, or allocated and written
 * once. A full pool submits what is recorded, empties the cache and goes on
 * recording. */
static qembed_status dset_get(qe_vk *vk, qe_vk_pipe pipe, const qe_vk_buf *const *bufs, int n,
                              VkDescriptorSet *out, qembed_error *err) {
    const qe_vk_fns *f = F();
    uint32_t i = dcache_slot((int)pipe, bufs, n);
    for (;; i = (i + 1) & (DCACHE_SLOTS - 1)) {
        const qe_vk_dset *d = &vk->dcache[i];
        if (d->pipe < 0) break;
        if (d->pipe != (int)pipe) continue;
        int same = 1;
        for (int b = 0; b < n && same; b++) same = !memcmp(&d->bufs[b], &bufs[b]->buf, sizeof d->bufs[b]);
        if (same) {
            *out = d->set;
            return QEMBED_OK;
        }
    }
    if (vk->desc_used >= vk->desc_cap) {
        QE_TRY(qe_vk_submit(vk, err));
        dcache_clear(vk);
        QE_TRY(qe_vk_begin(vk, err));
        i = dcache_slot((int)pipe, bufs, n);
    }
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = vk->desc_pool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &vk->dsl[pipe]};
    VkDescriptorSet set;
    VK_TRY(f->vkAllocateDescriptorSets(vk->dev, &ai, &set), "vkAllocateDescriptorSets");
    vk->desc_used++;
    vk->n_desc_writes++;
    VkDescriptorBufferInfo bi[MAX_BINDINGS];
    VkWriteDescriptorSet wr[MAX_BINDINGS];
    qe_vk_dset *d = &vk->dcache[i];
    d->pipe = (int)pipe;
    d->set = set;
    for (int b = 0; b < n; b++) {
        d->bufs[b] = bufs[b]->buf;
        bi[b] = (VkDescriptorBufferInfo){.buffer = bufs[b]->buf, .offset = 0, .range = VK_WHOLE_SIZE};
        wr[b] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                       .dstSet = set,
                                       .dstBinding = (uint32_t)b,
                                       .descriptorCount = 1,
                                       .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                       .pBufferInfo = &bi[b]};
    }
    f->vkUpdateDescriptorSets(vk->dev, (uint32_t)n, wr, 0, NULL);
    *out = set;
    return QEMBED_OK;
}

qembed_status qe_vk_dispatch(qe_vk *vk, qe_vk_pipe pipe, const qe_vk_buf *const *bufs, int n_bufs,
                             const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                             qembed_error *err) {
    const qe_vk_fns *f = F();
    QE_FAIL_IF(!vk->recording, err, QEMBED_ERR_INTERNAL, "vulkan: dispatch outside a recording");
    QE_FAIL_IF(n_bufs != vk->n_bind[pipe] || n_bufs > MAX_BINDINGS, err, QEMBED_ERR_INTERNAL,
               "vulkan: %s takes %d buffers, got %d", shaders[pipe].name, vk->n_bind[pipe], n_bufs);
    QE_FAIL_IF(gx > vk->info.max_groups[0] || gy > vk->info.max_groups[1], err, QEMBED_ERR_INVALID_ARGUMENT,
               "vulkan: %s needs %u x %u workgroups, more than %s allows (%u x %u)", shaders[pipe].name, gx,
               gy, vk->info.name, vk->info.max_groups[0], vk->info.max_groups[1]);
    if (gx == 0 || gy == 0) return QEMBED_OK;
    VkDescriptorSet set;
    QE_TRY(dset_get(vk, pipe, bufs, n_bufs, &set, err));
    f->vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pipe[pipe]);
    f->vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->layout[pipe], 0, 1, &set, 0,
                               NULL);
    f->vkCmdPushConstants(vk->cmd, vk->layout[pipe], VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    f->vkCmdDispatch(vk->cmd, gx, gy, 1);
    barrier(vk);
    return QEMBED_OK;
}

qembed_status qe_vk_copy(qe_vk *vk, const qe_vk_buf *src, const qe_vk_buf *dst, const VkBufferCopy *regions,
                         uint32_t n, qembed_error *err) {
    QE_FAIL_IF(!vk->recording, err, QEMBED_ERR_INTERNAL, "vulkan: copy outside a recording");
    if (n == 0) return QEMBED_OK;
    F()->vkCmdCopyBuffer(vk->cmd, src->buf, dst->buf, n, regions);
    barrier(vk);
    return QEMBED_OK;
}

/* ---- host <-> device through the staging buffer ---- */

qembed_status qe_vk_upload(qe_vk *vk, qe_vk_buf *b, uint64_t off, const void *src, uint64_t bytes,
                           qembed_error *err) {
    QE_FAIL_IF(off + bytes > b->size, err, QEMBED_ERR_INTERNAL,
               "vulkan: upload of %llu bytes at %llu past a buffer of %llu", (unsigned long long)bytes,
               (unsigned long long)off, (unsigned long long)b->size);
    for (uint64_t done = 0; done < bytes;) {
        uint64_t n = bytes - done < STAGING_BYTES ? bytes - done : STAGING_BYTES;
        memcpy(vk->staging_map, (const char *)src + done, n);
        QE_TRY(qe_vk_begin(vk, err));
        VkBufferCopy rg = {.srcOffset = 0, .dstOffset = off + done, .size = n};
        QE_TRY(qe_vk_copy(vk, &vk->staging, b, &rg, 1, err));
        QE_TRY(qe_vk_submit(vk, err));
        done += n;
    }
    return QEMBED_OK;
}

qembed_status qe_vk_download(qe_vk *vk, const qe_vk_buf *b, uint64_t off, void *dst, uint64_t bytes,
                             qembed_error *err) {
    QE_FAIL_IF(off + bytes > b->size, err, QEMBED_ERR_INTERNAL,
               "vulkan: download of %llu bytes at %llu past a buffer of %llu", (unsigned long long)bytes,
               (unsigned long long)off, (unsigned long long)b->size);
    for (uint64_t done = 0; done < bytes;) {
        uint64_t n = bytes - done < STAGING_BYTES ? bytes - done : STAGING_BYTES;
        QE_TRY(qe_vk_begin(vk, err));
        VkBufferCopy rg = {.srcOffset = off + done, .dstOffset = 0, .size = n};
        QE_TRY(qe_vk_copy(vk, b, &vk->staging, &rg, 1, err));
        QE_TRY(qe_vk_submit(vk, err));
        memcpy((char *)dst + done, vk->staging_map, n);
        done += n;
    }
    return QEMBED_OK;
}
#endif
