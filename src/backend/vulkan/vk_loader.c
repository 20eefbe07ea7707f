#ifndef QE_VK_NO_HEADERS
/* Opens the Vulkan loader at run time and creates the process-wide instance. */
#include "backend/vulkan/vk_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

static qe_vk_fns g_fns;
static VkInstance g_instance;
static const char *g_why = "not loaded";
static int g_ok;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void load_once(void) {
    void *h = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        g_why = "libvulkan.so.1 not found";
        return;
    }
    PFN_vkGetInstanceProcAddr gipa = (PFN_vkGetInstanceProcAddr)dlsym(h, "vkGetInstanceProcAddr");
    if (!gipa) {
        g_why = "libvulkan.so.1 has no vkGetInstanceProcAddr";
        return;
    }
    PFN_vkCreateInstance create = (PFN_vkCreateInstance)gipa(NULL, "vkCreateInstance");
    PFN_vkEnumerateInstanceVersion ver =
        (PFN_vkEnumerateInstanceVersion)gipa(NULL, "vkEnumerateInstanceVersion");
    uint32_t api = VK_API_VERSION_1_0;
    if (ver && ver(&api) != VK_SUCCESS) api = VK_API_VERSION_1_0;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "qembed",
                             .apiVersion =
                                 api >= VK_API_VERSION_1_1 ? VK_API_VERSION_1_1 : VK_API_VERSION_1_0};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    if (!create || create(&ci, NULL, &g_instance) != VK_SUCCESS) {
        g_why = "no Vulkan driver (vkCreateInstance failed)";
        return;
    }
#define QE_VK_GET(name)                               \
    g_fns.name = (PFN_##name)gipa(g_instance, #name); \
    if (!g_fns.name) {                                \
        g_why = "the Vulkan loader lacks " #name;     \
        return;                                       \
    }
    QE_VK_FUNCS(QE_VK_GET)
#undef QE_VK_GET
    if (app.apiVersion >= VK_API_VERSION_1_1)
        g_fns.vkGetPhysicalDeviceProperties2 =
            (PFN_vkGetPhysicalDeviceProperties2)gipa(g_instance, "vkGetPhysicalDeviceProperties2");
    g_ok = 1;
    g_why = "";
}

const qe_vk_fns *qe_vk_load(VkInstance *instance, const char **why) {
    pthread_once(&g_once, load_once);
    if (why) *why = g_why;
    if (!g_ok) return NULL;
    if (instance) *instance = g_instance;
    return &g_fns;
}
#endif
